"""The local engine server (`inbetween serve`): HTTP + JSON on 127.0.0.1 for the desktop app and Krita.

Modules: `app` (routes), `schema` (job JSON -> GenerationRequest), `jobs` (FIFO queue, one worker),
`security` (Host/Origin/token guard), `runner` (binding, token file, lifecycle), `cli` (the command),
`remote` (running a CLI job on a server). The client lives in engine.core.client (stdlib only).
"""
