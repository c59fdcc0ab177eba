"""Reference models for tests/lua/onnx_import.lua and the bad-input cases of
tests/lua/onnx.lua. Run with Debian's python3-torch and python3-onnx:
    /usr/bin/python3 tests/onnx/gen_models.py
Writes (committed): torch_mlp.onnx, torch_mlp_io.safetensors (x, y),
torch_cnn.onnx, torch_cnn_io.safetensors, bad/*.onnx."""
import os

import numpy as np
import onnx
import torch
from onnx import helper, TensorProto, numpy_helper

from safetensors_write import save_safetensors  # beside this script

here = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)

# A PyTorch MLP exported by torch.onnx.export (Gemm, Selu, Elu, ...).
net = torch.nn.Sequential(
    torch.nn.Linear(784, 64), torch.nn.SELU(), torch.nn.AlphaDropout(0.05),
    torch.nn.Linear(64, 32), torch.nn.ELU(0.5), torch.nn.BatchNorm1d(32),
    torch.nn.LeakyReLU(0.1), torch.nn.Linear(32, 10))
with torch.no_grad():
    net[5].running_mean.uniform_(-0.5, 0.5)
    net[5].running_var.uniform_(0.5, 2.0)
net.eval()
x = torch.randn(37, 784)
torch.onnx.export(net, (x,), os.path.join(here, "torch_mlp.onnx"), opset_version=15,
                  input_names=["input"], output_names=["output"],
                  dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
y = net(x).detach()




save_safetensors(os.path.join(here, "torch_mlp_io.safetensors"), {"x": x, "y": y})


def model(nodes, inits, inp="input", out="output", extra_inputs=()):
    g = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info(inp, TensorProto.FLOAT, ["N", 4])]
                          + list(extra_inputs),
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 2])], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)])


def save(name, m):
    with open(os.path.join(here, "bad", name), "wb") as f:
        f.write(m.SerializeToString())


w = numpy_helper.from_array(np.ones((2, 4), np.float32), "w")
gemm = helper.make_node("Gemm", ["input", "w"], ["output"], transB=1)
# a weight whose bytes do not match its dims (8 floats declared, 2 stored)
bad = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 4], raw_data=np.ones(2, np.float32).tobytes())
save("wrong_size.onnx", model([gemm], [bad]))
# huge declared dims (2^40 x 2^40) with 8 floats of data
huge = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 40, 1 << 40], raw_data=np.ones(8, np.float32).tobytes())
save("huge_dims.onnx", model([gemm], [huge]))
# a weight stored outside the file
ext = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 4], data_location=TensorProto.EXTERNAL)
ext.external_data.add(key="location", value="weights.bin")
save("external_data.onnx", model([gemm], [ext]))
# a cycle: two nodes that read each other's outputs
cyc = [helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
       helper.make_node("Gemm", ["b", "w"], ["output"], transB=1)]
save("cycle.onnx", model(cyc, [w]))
# an op selut does not import
save("unknown_op.onnx", model([helper.make_node("Gemm", ["input", "w"], ["h"], transB=1),
                                helper.make_node("HardSwish", ["h"], ["output"])], [w]))
# a float64 weight
d = numpy_helper.from_array(np.ones((2, 4), np.float64), "w")
save("double_weight.onnx", model([gemm], [d]))
# a branch: output = relu(input) + input
save("branch.onnx", model([helper.make_node("Gemm", ["input", "w"], ["h"], transB=1),
                           helper.make_node("Relu", ["h"], ["r"]),
                           helper.make_node("Add", ["r", "h"], ["output"])], [w]))
# an unsupported attribute value: Gemm with alpha = 2
save("gemm_alpha.onnx", model([helper.make_node("Gemm", ["input", "w"], ["output"], transB=1, alpha=2.0)], [w]))
# a custom domain
save("custom_domain.onnx", model([helper.make_node("Gemm", ["input", "w"], ["output"], transB=1, domain="com.example")], [w]))

# Convolution and pooling attributes selut's layers cannot express
cw = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "cw")
save("conv_auto_pad.onnx", model([helper.make_node("Conv", ["input", "cw"], ["output"], kernel_shape=[3, 3],
                                                   auto_pad="SAME_UPPER")], [cw]))
save("conv_asym_pads.onnx", model([helper.make_node("Conv", ["input", "cw"], ["output"], kernel_shape=[3, 3],
                                                    pads=[1, 0, 0, 0])], [cw]))
save("conv_kernel_shape.onnx", model([helper.make_node("Conv", ["input", "cw"], ["output"], kernel_shape=[5, 5])], [cw]))
c3 = numpy_helper.from_array(np.ones((2, 1, 3, 3, 3), np.float32), "cw")
save("conv3d.onnx", model([helper.make_node("Conv", ["input", "cw"], ["output"], kernel_shape=[3, 3, 3])], [c3]))
save("conv_weight_input.onnx", model([helper.make_node("Conv", ["input", "cw"], ["output"], kernel_shape=[3, 3])], [],
                                     extra_inputs=[helper.make_tensor_value_info("cw", TensorProto.FLOAT, [2, 1, 3, 3])]))
save("maxpool_indices.onnx", model([helper.make_node("MaxPool", ["input"], ["output", "idx"], kernel_shape=[2, 2])], []))
save("avgpool_ceil.onnx", model([helper.make_node("AveragePool", ["input"], ["output"], kernel_shape=[2, 2],
                                                  ceil_mode=1)], []))
save("pool1d.onnx", model([helper.make_node("MaxPool", ["input"], ["output"], kernel_shape=[2])], []))
# Gather of another axis, LayerNormalization whose scale does not cover the normalized dims
save("gather_axis1.onnx", model([helper.make_node("Gather", ["w", "input"], ["output"], axis=1)], [w]))
ls = numpy_helper.from_array(np.ones(4, np.float32), "s")
save("layernorm_axis.onnx", model([helper.make_node("LayerNormalization", ["input", "s"], ["output"], axis=-2)], [ls]))
# an int64 initializer whose bytes do not match its dims
bi = onnx.TensorProto(name="w", data_type=TensorProto.INT64, dims=[3], raw_data=np.ones(2, np.int64).tobytes())
save("int64_wrong_size.onnx", model([gemm], [bi]))

# A PyTorch CNN (Conv, BatchNorm folded or not, pools, Flatten, Gemm) for
# tests/lua/onnx_import.lua.
torch.manual_seed(1)
cnn = torch.nn.Sequential(
    torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.SELU(), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), torch.nn.BatchNorm2d(6), torch.nn.ReLU(),
    torch.nn.AvgPool2d(2, stride=1, count_include_pad=False), torch.nn.Conv2d(6, 8, 1, bias=False), torch.nn.AdaptiveAvgPool2d(1),
    torch.nn.Flatten(), torch.nn.Linear(8, 5))
with torch.no_grad():
    cnn[4].running_mean.uniform_(-0.5, 0.5)
    cnn[4].running_var.uniform_(0.5, 2.0)
cnn.eval()
xc = torch.randn(37, 1, 12, 12)
torch.onnx.export(cnn, (xc,), os.path.join(here, "torch_cnn.onnx"), opset_version=13,
                  input_names=["input"], output_names=["output"],
                  dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
save_safetensors(os.path.join(here, "torch_cnn_io.safetensors"), {"x": xc, "y": cnn(xc).detach()})
print("wrote", os.listdir(os.path.join(here, "bad")))
