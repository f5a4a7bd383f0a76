//! The Argo CD health check (Lua) run by a Lua 5.1 interpreter (to be written).
