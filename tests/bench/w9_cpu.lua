-- w9_cpu.lua: the CPU-bound work of W9 (w9_worker.lua), a module that both
-- the loop and async.worker's states load: n rounds of string hashing.
local M = {}

function M.work(n)
  local h, byte = 0, string.byte
  local s = "the quick brown fox jumps over the lazy dog"
  for i = 1, n do
    for j = 1, #s do h = (h * 31 + byte(s, j) + i) % 4294967296 end
  end
  return h
end

return M
