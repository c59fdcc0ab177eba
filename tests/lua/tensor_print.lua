-- tostring: aligned columns, Torch7's size line, abbreviation of long tensors.
local H = dofile(arg[0]:gsub("[^/]*$", "") .. "_helper.lua")
local check = H.check
local T = selut.tensor

local function eq(got, want, msg)
  if got ~= want then error(string.format("check failed: %s:\n--- got\n%s\n--- expected\n%s", msg, got, want), 2) end
end

eq(tostring(T.new { { 1, 2, 3 }, { 40, 5, -6 } }),
   "  1  2  3\n 40  5 -6\n[selut.Tensor of size 2x3]", "integers, right-aligned")
eq(tostring(T.new { 0.5, -1.25, 3 }),
   "  0.5000 -1.2500  3.0000\n[selut.Tensor of size 3]", "fixed point, 4 decimals")
eq(tostring(T.new { 1e-6, 1 }),
   " 1.0000e-06 1.0000e+00\n[selut.Tensor of size 2]", "scientific when magnitudes span > 1e3")
eq(tostring(T.zeros(2, 0)), "[selut.Tensor with no elements of size 2x0]", "empty")
eq(tostring(T.new { { { 1, 2 }, { 3, 4 } }, { { 5, 6 }, { 7, 8 } } }),
   "(1,.,.) = \n 1 2\n 3 4\n\n(2,.,.) = \n 5 6\n 7 8\n[selut.Tensor of size 2x2x2]", "3-D slices")

-- long tensors: first and last 3 of each dim, "..." between
local long = tostring(T.arange(2000))
eq(long, "    0    1    2 ... 1997 1998 1999\n[selut.Tensor of size 2000]", "long 1-D")
local big = tostring(T.arange(100 * 50):reshape(100, 50))
local lines = {}
for l in big:gmatch("[^\n]+") do lines[#lines + 1] = l end
check(#lines == 8, "3 rows, ..., 3 rows, size line: got " .. #lines .. " lines")
check(lines[4] == " ...", "row gap line")
check(lines[1] == "    0    1    2 ...   47   48   49", "first row abbreviated: " .. lines[1])
check(lines[7]:find("4997 4998 4999$"), "last row")
check(lines[8] == "[selut.Tensor of size 100x50]", "size line")

-- wide rows wrap at 80 columns, keeping columns aligned
local wide = tostring(T.arange(40):reshape(2, 20) + 0.5)
for l in wide:gmatch("[^\n]+") do check(#l <= 80, "line within 80 columns: " .. l) end

-- print works too (uses __tostring)
check(select("#", tostring(T.ones(1))) == 1, "tostring returns one string")

-- NaN prints as "nan" whatever its sign bit (0/0 is a negative NaN on x86), as in PyTorch
local nans = tostring(T.new { 0 / 0, -(0 / 0), 1 / 0, -1 / 0 })
check(nans:match("^[^\n]*") == "  nan  nan  inf -inf", "NaN of either sign prints nan: " .. nans)
