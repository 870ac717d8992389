import type { PairStatus } from '../../../shared/status.js';

/** The folder filter of Recent changes and Versions: "All folders" (value '') or one pair. */
export function FolderSelect({
  id,
  pairs,
  value,
  onChange,
}: {
  id: string;
  pairs: PairStatus[];
  value: string;
  onChange: (pair: string) => void;
}) {
  return (
    <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
      <option value="">All folders</option>
      {pairs.map((p) => (
        <option key={p.id} value={p.id}>
          {p.id}
        </option>
      ))}
    </select>
  );
}
