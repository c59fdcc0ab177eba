-- Bad input for nn.MultiheadAttention and nn.F.scaled_dot_product_attention:
-- each call raises a message naming the layer (or function), the argument
-- and the shapes or values, and leaves the state healthy; the error paths
-- leak nothing.
local B = dofile(arg[0]:gsub("[^/]*$", "") .. "_bad.lua")
local bad = B.bad
local T, nn, F = selut.tensor, selut.nn, selut.nn.F
local m = nn.MultiheadAttention(8, 2)
local q, k = T.randn(3, 2, 8), T.randn(4, 2, 8)
bad("MultiheadAttention: embed_dim (10) must be divisible by num_heads (3)",
    function() return nn.MultiheadAttention(10, 3) end)
bad("MultiheadAttention: kdim (4) different from embed_dim (8) is not supported",
    function() return nn.MultiheadAttention(8, 2, {kdim = 4}) end)
bad("MultiheadAttention: add_bias_kv is not supported",
    function() return nn.MultiheadAttention(8, 2, {add_bias_kv = true}) end)
bad("MultiheadAttention: dropout must be in [0, 1), got 1",
    function() return nn.MultiheadAttention(8, 2, {dropout = 1}) end)
bad("bad argument #3 to 'MultiheadAttention' (unknown option 'drop')",
    function() return nn.MultiheadAttention(8, 2, {drop = 1}) end)
bad("MultiheadAttention: embed_dim and num_heads must be >= 1, got 0 and 2",
    function() return nn.MultiheadAttention(0, 2) end)
bad("MultiheadAttention.forward: query should be an unbatched 2-D or batched 3-D tensor, got [3 x 2 x 2 x 8]",
    function() return m(T.randn(3, 2, 2, 8), k, k) end)
bad("MultiheadAttention.forward: key [4 x 2 x 8] and value [4 x 2 x 8] must have query's 2 dims (query [3 x 8])",
    function() return m(T.randn(3, 8), k, k) end)
bad("MultiheadAttention.forward: query [3 x 2 x 6] and key [4 x 2 x 8] must end with embed_dim 8",
    function() return m(T.randn(3, 2, 6), k, k) end)
bad("MultiheadAttention.forward: key shape [4 x 2 x 8] does not match value shape [5 x 2 x 8]",
    function() return m(q, k, T.randn(5, 2, 8)) end)
bad("MultiheadAttention.forward: query [3 x 2 x 8] and key [4 x 3 x 8] have different batch sizes (dim 2)",
    function() return m(q, T.randn(4, 3, 8), T.randn(4, 3, 8)) end)
bad("MultiheadAttention: key_padding_mask shape [2 x 3], expected [2 x 4]",
    function() return m(q, k, k, {key_padding_mask = T.zeros(2, 3)}) end)
bad("MultiheadAttention: attn_mask shape [4 x 3], expected [3 x 4] or [4 x 3 x 4]",
    function() return m(q, k, k, {attn_mask = T.zeros(4, 3)}) end)
bad("MultiheadAttention: attn_mask shape [3 x 3 x 4], expected [3 x 4] or [4 x 3 x 4]",
    function() return m(q, k, k, {attn_mask = T.zeros(3, 3, 4)}) end)
bad("bad argument #5 to 'm' (unknown option 'mask' (expected one of key_padding_mask, attn_mask, need_weights, average_attn_weights, is_causal, mask_type))",
    function() return m(q, k, k, {mask = T.zeros(3, 4)}) end)
bad("bad argument #5 to 'm' (need_weights must be a boolean, got number)",
    function() return m(q, k, k, {need_weights = 1}) end)
bad("bad argument #5 to 'm' (mask_type must be 'auto', 'bool' or 'float', got 'boolean')",
    function() return m(q, k, k, {mask_type = "boolean"}) end)
bad("MultiheadAttention: attn_mask is a boolean mask (mask_type 'bool') but holds 0.5 at element 2 (expected 0 or 1)",
    function() return m(q, k, k, {attn_mask = T.new{{0, 0.5, 0, 0}, {0,0,0,0}, {0,0,0,0}}, mask_type = "bool"}) end)
bad("bad argument #5 to 'm' (attn_mask must be a tensor, got string)",
    function() return m(q, k, k, {attn_mask = "x"}) end)
bad("bad argument #4 to 'm' (query, key and value expected (or query alone for self-attention), then an optional options table)",
    function() return m(q, k) end)
bad("MultiheadAttention.backward: called before a successful forward",
    function() return m:backward(q, k, k, T.zeros(3, 2, 7)) end)
bad("MultiheadAttention.backward: input shapes differ from the last forward's; call forward first",
    function() m(q, k, k); return m:backward(T.randn(2,2,8), k, k, T.zeros(2, 2, 8)) end)
bad("MultiheadAttention.backward: called before a successful forward",
    function() return nn.MultiheadAttention(8, 2):backward(q, k, k, T.zeros(3, 2, 8)) end)
bad("scaled_dot_product_attention: query, key and value need at least 2 dims (..., L, E), got [4], [4 x 2 x 8] and [4 x 2 x 8]",
    function() return F.scaled_dot_product_attention(T.randn(4), k, k) end)
bad("scaled_dot_product_attention: shapes query [2 x 3 x 4], key [2 x 5 x 3], value [2 x 5 x 3] do not fit (expected (..., L, E), (..., S, E), (..., S, Ev) with the same leading dims)",
    function() return F.scaled_dot_product_attention(T.randn(2, 3, 4), T.randn(2, 5, 3), T.randn(2, 5, 3)) end)
bad("scaled_dot_product_attention: shapes query [2 x 3 x 4], key [2 x 5 x 4], value [2 x 4 x 4] do not fit (expected (..., L, E), (..., S, E), (..., S, Ev) with the same leading dims)",
    function() return F.scaled_dot_product_attention(T.randn(2, 3, 4), T.randn(2, 5, 4), T.randn(2, 4, 4)) end)
bad("scaled_dot_product_attention: attn_mask shape [3 x 4] does not broadcast to [2 x 3 x 5]",
    function() return F.scaled_dot_product_attention(T.randn(2, 3, 4), T.randn(2, 5, 4), T.randn(2, 5, 4), {attn_mask = T.zeros(3, 4)}) end)
bad("scaled_dot_product_attention: attn_mask shape [3 x 3 x 5] does not broadcast to [2 x 3 x 5]",
    function() return F.scaled_dot_product_attention(T.randn(2, 3, 4), T.randn(2, 5, 4), T.randn(2, 5, 4), {attn_mask = T.zeros(3, 3, 5)}) end)
bad("scaled_dot_product_attention: attn_mask and is_causal cannot both be given (PyTorch's rule)",
    function() return F.scaled_dot_product_attention(T.randn(2, 3, 4), T.randn(2, 5, 4), T.randn(2, 5, 4), {attn_mask = T.zeros(3, 5), is_causal = true}) end)
bad("scaled_dot_product_attention: dropout_p must be in [0, 1), got 1",
    function() return F.scaled_dot_product_attention(T.randn(2, 3, 4), T.randn(2, 5, 4), T.randn(2, 5, 4), {dropout_p = 1}) end)
bad("bad argument #4 to 'scaled_dot_product_attention' (scale must be a number > 0, got -1.0)",
    function() return F.scaled_dot_product_attention(T.randn(2, 3, 4), T.randn(2, 5, 4), T.randn(2, 5, 4), {scale = -1}) end)
bad("bad argument #4 to 'scaled_dot_product_attention' (unknown option 'causal' (expected one of attn_mask, dropout_p, is_causal, scale, mask_type))",
    function() return F.scaled_dot_product_attention(T.randn(2, 3, 4), T.randn(2, 5, 4), T.randn(2, 5, 4), {causal = true}) end)
B.no_leak(function() return m(q, k, k, {attn_mask = T.zeros(4, 3)}) end)
B.no_leak(function() return F.scaled_dot_product_attention(T.randn(2, 3, 4), T.randn(2, 5, 4), T.randn(2, 5, 4), {attn_mask = T.zeros(9, 9)}) end)
B.done(30)
