"""Graphs that are not chains, for tests/lua/onnx_graph.lua, and the
graph importer's bad-input models. Run with Debian's python3-torch and
python3-onnx:
    /usr/bin/python3 tests/onnx/gen_graphs.py
Writes (committed): torch_resmlp.onnx (opset 15) + torch_resmlp_io.safetensors,
torch_gru.onnx (opset 14) + torch_gru_io.safetensors, torch_lstm.onnx (opset 17)
+ torch_lstm_io.safetensors, graph_split.onnx and bad/graph_*.onnx."""
import os

import numpy as np
import onnx
import torch
from onnx import helper, TensorProto, numpy_helper

from safetensors_write import save_safetensors  # beside this script

here = os.path.dirname(os.path.abspath(__file__))




class ResMLP(torch.nn.Module):
    """A residual MLP for Fashion-MNIST: blocks of Linear-SELU-Linear added to
    their input, a LayerNorm (decomposed by the exporter below opset 17),
    GELU (Div, Erf, Add, Mul, Mul), dropout (gone in eval)."""

    def __init__(self):
        super().__init__()
        self.inp = torch.nn.Linear(784, 64)
        self.blocks = torch.nn.ModuleList(
            [torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.SELU(), torch.nn.AlphaDropout(0.05),
                                 torch.nn.Linear(64, 64)) for _ in range(2)])
        self.norm = torch.nn.LayerNorm(64)
        self.out = torch.nn.Linear(64, 10)

    def forward(self, x):
        h = torch.selu(self.inp(x))
        for b in self.blocks:
            h = h + b(h)
        return self.out(torch.nn.functional.gelu(self.norm(h)))


class GRUNet(torch.nn.Module):
    """examples/sequence.lua's model in PyTorch: a 2-layer GRU over the 28
    rows of an image (batch_first), the head on the top layer's h_n plus the
    mean of the output sequence."""

    def __init__(self):
        super().__init__()
        self.gru = torch.nn.GRU(28, 32, num_layers=2, batch_first=True)
        self.head = torch.nn.Linear(32, 10)

    def forward(self, x):
        out, h = self.gru(x)
        return self.head(h[-1] + out.mean(1))


class LSTMNet(torch.nn.Module):
    """An LSTM (time-major) with given initial states, LayerNormalization
    (opset 17), a Transpose/Reshape and a Softmax over a middle axis."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(5, 6)
        self.norm = torch.nn.LayerNorm(6)
        self.head = torch.nn.Linear(6, 3)

    def forward(self, x, h0, c0):
        out, (h, c) = self.lstm(x, (h0, c0))
        y = self.norm(out).transpose(0, 1)            # [N x T x 6]
        y = torch.softmax(self.head(y), dim=1)         # over time
        return y.reshape(y.shape[0], -1), h[0] - c[0]


def export(net, args, name, opset, in_names, out_names):
    net.eval()
    dyn = {n: {0: "N"} for n in in_names + out_names}
    if name == "torch_lstm":
        dyn = {"x": {1: "N"}, "h0": {1: "N"}, "c0": {1: "N"}, "y": {0: "N"}, "hc": {0: "N"}}
    torch.onnx.export(net, args, os.path.join(here, name + ".onnx"), opset_version=opset, input_names=in_names,
                      output_names=out_names, dynamic_axes=dyn)
    with torch.no_grad():
        ys = net(*args)
    ys = ys if isinstance(ys, tuple) else (ys,)
    io = {("x" + str(i + 1)): a for i, a in enumerate(args)}
    io.update({("y" + str(i + 1)): y for i, y in enumerate(ys)})
    save_safetensors(os.path.join(here, name + "_io.safetensors"), io)


torch.manual_seed(5)
res = ResMLP()
with torch.no_grad():
    res.norm.weight.uniform_(0.5, 1.5)
    res.norm.bias.uniform_(-0.3, 0.3)
export(res, (torch.randn(37, 784),), "torch_resmlp", 15, ["input"], ["output"])
torch.manual_seed(6)
export(GRUNet(), (torch.randn(37, 28, 28),), "torch_gru", 14, ["input"], ["output"])
torch.manual_seed(7)
lstm = LSTMNet()
with torch.no_grad():
    lstm.norm.weight.uniform_(0.5, 1.5)
export(lstm, (torch.randn(7, 37, 5), torch.randn(1, 37, 6), torch.randn(1, 37, 6)), "torch_lstm", 17,
       ["x", "h0", "c0"], ["y", "hc"])


# Split (opset 13: sizes as an input) and Concat in reverse order
sp = helper.make_graph([helper.make_node("Split", ["input", "sizes"], ["a", "b"], axis=1),
                        helper.make_node("Concat", ["b", "a"], ["output"], axis=-1)], "split",
                       [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 6])],
                       [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 6])],
                       initializer=[numpy_helper.from_array(np.array([2, 4], np.int64), "sizes")])
onnx.save(helper.make_model(sp, opset_imports=[helper.make_opsetid("", 13)]), os.path.join(here, "graph_split.onnx"))


# ---- graphs the importer refuses (each with a message naming node and attribute) ----
def model(nodes, inits, inputs=(("input", ["N", 4]),), out="output", opset=15):
    g = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def save(name, m):
    with open(os.path.join(here, "bad", name), "wb") as f:
        f.write(m.SerializeToString())


def i64(name, v):
    return numpy_helper.from_array(np.array(v, np.int64), name)


def f32(name, v):
    return numpy_helper.from_array(np.array(v, np.float32), name)


H = 3
W = f32("W", np.ones((1, 3 * H, 4)))
R = f32("R", np.ones((1, 3 * H, H)))
seq = [("input", [5, "N", 4])]
gru_out = ["Y", "Y_h"]
# GRU with linear_before_reset = 0 (ONNX's default; PyTorch's GRU is 1)
save("graph_gru_lbr0.onnx", model([helper.make_node("GRU", ["input", "W", "R"], gru_out, hidden_size=H),
                                   helper.make_node("Identity", ["Y_h"], ["output"])], [W, R], seq))
save("graph_gru_bidir.onnx", model([helper.make_node("GRU", ["input", "W", "R"], gru_out, hidden_size=H,
                                                     linear_before_reset=1, direction="bidirectional"),
                                    helper.make_node("Identity", ["Y_h"], ["output"])], [W, R], seq))
W4, R4 = f32("W", np.ones((1, 4 * H, 4))), f32("R", np.ones((1, 4 * H, H)))
save("graph_lstm_clip.onnx", model([helper.make_node("LSTM", ["input", "W", "R"], ["Y", "Y_h", "Y_c"], hidden_size=H,
                                                     clip=1.0),
                                    helper.make_node("Identity", ["Y_h"], ["output"])], [W4, R4], seq))
save("graph_lstm_seqlens.onnx", model([helper.make_node("LSTM", ["input", "W", "R", "", "lens"], ["Y", "Y_h", "Y_c"],
                                                        hidden_size=H),
                                       helper.make_node("Identity", ["Y_h"], ["output"])],
                                      [W4, R4, i64("lens", [5])], seq))
# an Erf that is not GELU's
save("graph_erf.onnx", model([helper.make_node("Erf", ["input"], ["e"]),
                              helper.make_node("Add", ["e", "input"], ["output"])], []))
# a Constant given as value_float (only a 'value' tensor is read)
save("graph_constant_float.onnx", model([helper.make_node("Constant", [], ["c"], value_float=2.0),
                                         helper.make_node("Mul", ["input", "c"], ["output"])], []))
# a Constant tensor whose bytes disagree with its dims
badc = onnx.TensorProto(data_type=TensorProto.FLOAT, dims=[3], raw_data=np.ones(2, np.float32).tobytes())
save("graph_constant_size.onnx", model([helper.make_node("Constant", [], ["c"], value=badc),
                                        helper.make_node("Mul", ["input", "c"], ["output"])], []))
# a bool Constant (data type 9)
save("graph_constant_bool.onnx", model([helper.make_node("Constant", [], ["c"], value=helper.make_tensor(
    "c", TensorProto.BOOL, [1], [True])), helper.make_node("Where", ["c", "input", "input"], ["output"])], []))
# Slice with step 2
save("graph_slice_step.onnx", model([helper.make_node("Slice", ["input", "s", "e", "a", "st"], ["h"]),
                                     helper.make_node("Add", ["h", "h"], ["output"])],
                                    [i64("s", [0]), i64("e", [4]), i64("a", [1]), i64("st", [2])]))
# Reshape with allowzero = 1
save("graph_reshape_allowzero.onnx", model([helper.make_node("Reshape", ["input", "shape"], ["h"], allowzero=1),
                                            helper.make_node("Add", ["h", "h"], ["output"])], [i64("shape", [0, 4])]))
# an op selut does not import, in a graph that is not a chain
save("graph_unknown_op.onnx", model([helper.make_node("HardSwish", ["input"], ["h"]),
                                     helper.make_node("Add", ["h", "input"], ["output"])], []))
# Dropout's mask output
save("graph_dropout_mask.onnx", model([helper.make_node("Dropout", ["input"], ["h", "mask"]),
                                       helper.make_node("Add", ["h", "input"], ["output"])], []))
# BatchNormalization in training mode (opset 15)
bn = [f32(n, np.ones(4)) for n in ("s", "b", "m", "v")]
save("graph_bn_training.onnx", model([helper.make_node("BatchNormalization", ["input", "s", "b", "m", "v"], ["h"],
                                                       training_mode=1),
                                      helper.make_node("Add", ["h", "input"], ["output"])], bn))
# Softmax before opset 13 over a non-last axis of a 3-D input (ONNX flattens)
save("graph_softmax_opset11.onnx", model([helper.make_node("Softmax", ["input"], ["h"], axis=1),
                                          helper.make_node("Add", ["h", "input"], ["output"])], [],
                                         [("input", ["N", 3, 4])], opset=11))
# Shape with start (opset 15)
save("graph_shape_start.onnx", model([helper.make_node("Shape", ["input"], ["s"], start=1),
                                      helper.make_node("Reshape", ["input", "s"], ["output"])], []))
# a Gemm whose B is computed: fine; with a Conv weight computed: refused
save("graph_conv_weight.onnx", model([helper.make_node("Relu", ["w"], ["wr"]),
                                      helper.make_node("Conv", ["input", "wr"], ["output"], kernel_shape=[1, 1])],
                                     [], [("input", ["N", 1, 4, 4]), ("w", [2, 1, 1, 1])]))
print("wrote", sorted(f for f in os.listdir(os.path.join(here, "bad")) if f.startswith("graph_")))
