/*
 * malloc-trim.node: glibc's malloc_trim(0) for the engine (electron/engine/native.ts).
 *
 * After a big sync cycle the engine's JavaScript heap is released (memory.ts), but glibc's
 * main malloc heap keeps the free holes the cycle left between live blocks: free() gives
 * memory back only from the heap's top. At 1,000,000 files that was ~17 MiB of an idle
 * daemon's RSS; malloc_trim(0) returns every free page in the middle too (MADV_DONTNEED).
 *
 * A Node-API module, so one build loads in Node and in Electron alike. The few Node-API
 * declarations it needs are written out here (as in js_native_api.h), so building it
 * needs only a C compiler, not Node's headers: `cc -shared -fPIC` (scripts/build-native.mjs).
 */
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* napi_ok is 0 */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);

extern napi_status napi_create_function(napi_env env, const char *utf8name, size_t length, napi_callback cb,
                                        void *data, napi_value *result);
extern napi_status napi_set_named_property(napi_env env, napi_value object, const char *utf8name, napi_value value);
extern napi_status napi_get_boolean(napi_env env, _Bool value, napi_value *result);

/* trim(): malloc_trim(0); true when memory was given back to the system. */
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out = NULL;
  napi_get_boolean(env, malloc_trim(0) != 0, &out);
  return out;
}

__attribute__((visibility("default"))) int32_t node_api_module_get_api_version_v1(void) { return 1; }

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  napi_value fn = NULL;
  if (napi_create_function(env, "trim", SIZE_MAX, trim, NULL, &fn) != 0) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != 0) return NULL;
  return exports;
}
