-- Drive a real Neovim against `greenpatch serve`: open a buggy file, save, wait for greenpatch's test-failure
-- diagnostic, apply the preferred quick fix, save again. Writes one result line to $GP_RESULT and exits 0 on success.
local root, python, result_path = vim.env.GP_ROOT, vim.env.GP_PYTHON, vim.env.GP_RESULT
local function finish(ok, message)
  local f = assert(io.open(result_path, "w"))
  f:write((ok and "OK " or "FAIL ") .. message .. "\n")
  f:close()
  vim.cmd(ok and "qa!" or "cquit! 1")
end

vim.cmd.edit(root .. "/shop/pricing.py")
local buf = vim.api.nvim_get_current_buf()
local client_id = vim.lsp.start({
  name = "greenpatch",
  cmd = { python, "-m", "greenpatch", "serve" },
  root_dir = root,
  init_options = { model = { completion = "fake", repair = "fake" }, trusted = true },
}, { bufnr = buf })
if not client_id then return finish(false, "could not start the server") end
if not vim.wait(30000, function()
  local client = vim.lsp.get_client_by_id(client_id)
  return client ~= nil and client.initialized
end, 50) then
  return finish(false, "server did not initialize")
end

vim.cmd.write()
local failure
if not vim.wait(150000, function()
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    if d.code == "test-failure" and d.message:find("verified fix available", 1, true) then
      failure = d
      return true
    end
  end
  return false
end, 200) then
  local seen = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do table.insert(seen, d.message) end
  return finish(false, "no verified-fix diagnostic; saw: " .. table.concat(seen, " | "))
end

vim.api.nvim_win_set_cursor(0, { failure.lnum + 1, 0 })
local params = vim.lsp.util.make_range_params(0, "utf-16")
params.context = { diagnostics = { failure.user_data.lsp }, only = { "quickfix" } }
local responses = vim.lsp.buf_request_sync(buf, "textDocument/codeAction", params, 20000) or {}
local action
for _, response in pairs(responses) do
  for _, candidate in ipairs(response.result or {}) do
    if candidate.edit and (action == nil or candidate.isPreferred) then action = candidate end
  end
end
if not action then return finish(false, "no quick fix offered") end
vim.lsp.util.apply_workspace_edit(action.edit, "utf-16")
vim.cmd.write()
finish(true, action.title)
