/* libFuzzer target: sl_onnx_load on arbitrary bytes. A file that loads
 * must answer every getter the Lua half asks (ops, edges, attributes, graph
 * inputs/outputs, initializers) without reading outside the model, and its
 * initializers must come out as tensors of the declared size. */
#include "fuzz_util.h"

static volatile size_t fuzz_sink;
static volatile double fuzz_dsink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_path("onnx");
  fuzz_write(path, data, size);
  sl_onnx_model *m = sl_onnx_load(path);
  if (!m) {
    fuzz_expect_message();
    return 0;
  }
  (void)sl_onnx_opset(m);
  size_t sink = 0;
  double dsink = 0;
  for (int k = 0; k < sl_onnx_graph_ninputs(m); k++) sink += strlen(sl_onnx_graph_input(m, k));
  for (int k = 0; k < sl_onnx_graph_noutputs(m); k++) sink += strlen(sl_onnx_graph_output(m, k));
  int n = sl_onnx_node_count(m);
  if (n < 0) abort();
  for (int i = 0; i < n; i++) {
    sink += strlen(sl_onnx_node_op(m, i));
    for (int k = 0; k < sl_onnx_node_noutputs(m, i); k++) sink += strlen(sl_onnx_node_output(m, i, k));
    for (int k = 0; k < sl_onnx_node_nattrs(m, i); k++) {
      sink += strlen(sl_onnx_node_attr_name(m, i, k));
      const int64_t *v;
      switch (sl_onnx_node_attr_kind(m, i, k)) {
      case 'f':
      case 'i': dsink += sl_onnx_node_attr_number(m, i, k); break; /* any double: no cast */
      case 's': {
        size_t len;
        const char *str = sl_onnx_node_attr_string(m, i, k, &len);
        for (size_t j = 0; j < len; j++) sink += (unsigned char)str[j];
        break;
      }
      case 'I': {
        int c = sl_onnx_node_attr_ints(m, i, k, &v);
        for (int j = 0; j < c; j++) sink += (size_t)v[j];
        break;
      }
      case 't': { /* a Constant's value: checked at load like an initializer */
        int nd;
        bool i64;
        sl_tensor *t = sl_onnx_node_attr_tensor(m, i, k, &nd, &i64);
        if (!t) {
          fuzz_expect_message();
          break;
        }
        if (nd < 0 || nd > SL_MAX_DIMS) abort();
        fuzz_check_tensor(t);
        sl_tensor_release(t);
        break;
      }
      default: break;
      }
    }
    for (int k = 0; k < sl_onnx_node_ninputs(m, i); k++) {
      const char *in = sl_onnx_node_input(m, i, k);
      sink += strlen(in);
      if (!*in || !sl_onnx_has_initializer(m, in)) continue;
      int nd;
      bool i64;
      if (!sl_onnx_initializer_info(m, in, &nd, &i64) || nd < 0 || nd > SL_MAX_DIMS) abort();
      sl_tensor *t = sl_onnx_initializer(m, in);
      if (!t) {
        fuzz_expect_message(); /* only an out-of-memory may fail here */
        continue;
      }
      fuzz_check_tensor(t);
      sl_tensor_release(t);
    }
  }
  fuzz_sink = sink;
  fuzz_dsink = dsink;
  sl_onnx_model_free(m);
  return 0;
}
