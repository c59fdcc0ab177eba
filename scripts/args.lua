-- Command-line options for scripts: a spec list gives each option's name,
-- default (whose type fixes the option's type), help text and, optionally,
-- the allowed choices. parse() never exits: it returns nil plus a message
-- and the usage text, and the script decides (examples exit with status 2).
--
--   local args = require "selut.args"
--   local spec = {
--     {"epochs", 10, "number of epochs"},
--     {"act", "selu", "activation", choices = {"selu", "elu", "relu"}},
--     {"plots", true, "write PNG plots"},            -- --plots / --no-plots
--     {"resume", "", "checkpoint to resume from"},
--   }
--   local opt, err, usage = args.parse(arg, spec, "selut examples/train.lua [options]")
local M = {}

function M.usage(spec, head)
  local lines = {"usage: " .. (head or "script [options]"), "options:"}
  for _, o in ipairs(spec) do
    local name, default, help = o[1], o[2], o[3] or ""
    local flag
    if type(default) == "boolean" then
      flag = string.format("--%s / --no-%s", name, name)
    else
      flag = string.format("--%s %s", name, type(default) == "number" and "N" or "S")
    end
    local extra = o.choices and (" (" .. table.concat(o.choices, "|") .. ")") or ""
    local dflt = default == "" and "" or string.format(" [default: %s]", tostring(default))
    lines[#lines + 1] = string.format("  %-26s %s%s%s", flag, help, extra, dflt)
  end
  lines[#lines + 1] = string.format("  %-26s %s", "-h, --help", "show this help")
  return table.concat(lines, "\n")
end

function M.parse(argv, spec, head)
  local usage = M.usage(spec, head)
  local byname, opt = {}, {}
  for _, o in ipairs(spec) do
    byname[o[1]] = o
    opt[o[1]] = o[2]
  end
  local i, n = 1, #argv
  while i <= n do
    local a = argv[i]
    if a == "-h" or a == "--help" then
      opt.help = true
      return opt, nil, usage
    end
    local name, inline = a:match("^%-%-([%w_%-]+)=(.*)$")
    if not name then name = a:match("^%-%-([%w_%-]+)$") end
    if not name then return nil, string.format("unexpected argument '%s'", a), usage end
    local o = byname[name]
    local negated = false
    if not o and name:sub(1, 3) == "no-" and byname[name:sub(4)] and type(byname[name:sub(4)][2]) == "boolean" then
      o, negated = byname[name:sub(4)], true
    end
    if not o then return nil, string.format("unknown option '--%s'", name), usage end
    local kind = type(o[2])
    if kind == "boolean" then
      if inline then return nil, string.format("option '--%s' takes no value", name), usage end
      opt[o[1]] = not negated
    else
      local v = inline
      if v == nil then
        i = i + 1
        v = argv[i]
        if v == nil then return nil, string.format("option '--%s' needs a value", name), usage end
      end
      if kind == "number" then
        local num = tonumber(v)
        if num == nil or num ~= num then
          return nil, string.format("option '--%s' expects a number, got '%s'", name, v), usage
        end
        if math.type(o[2]) == "integer" then
          if math.type(num) ~= "integer" and num ~= math.floor(num) then
            return nil, string.format("option '--%s' expects an integer, got '%s'", name, v), usage
          end
          num = math.tointeger(num) or num
        end
        if o.min and num < o.min then
          return nil, string.format("option '--%s' must be at least %s, got %s", name, o.min, v), usage
        end
        if o.max and num > o.max then
          return nil, string.format("option '--%s' must be at most %s, got %s", name, o.max, v), usage
        end
        v = num
      end
      if o.choices then
        local ok = false
        for _, c in ipairs(o.choices) do ok = ok or c == v end
        if not ok then
          return nil, string.format("option '--%s' must be one of %s, got '%s'", name,
                                    table.concat(o.choices, "|"), tostring(v)), usage
        end
      end
      opt[o[1]] = v
    end
    i = i + 1
  end
  return opt, nil, usage
end

return M
