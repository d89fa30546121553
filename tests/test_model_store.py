"""The model store (location, import to fp16, finding weights), resumable sha256-checked downloads
against a local HTTP server, and the `inbetween models` command."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.api import CancelToken, EngineError
from engine.models_cli import main as models_main
from engine.tooncrafter.networks.config import tiny_from_reference
from engine.tooncrafter.weights import store as store_mod
from engine.tooncrafter.weights.checkpoint import load_tooncrafter
from engine.tooncrafter.weights.download import DownloadError, download, part_path
from engine.tooncrafter.weights.store import (
    KNOWN_FILES,
    KnownFile,
    ModelStore,
    default_models_dir,
    download_known,
    import_weights,
    locate_weights,
    models_dir,
    sha256_of,
    write_safetensors_streaming,
)


@pytest.fixture(scope="module")
def tiny(reference_dir):
    folder = reference_dir / "tiny_a"
    return {
        "folder": folder,
        "config": tiny_from_reference(json.loads((folder / "config.json").read_text())),
        "weights": load_file(str(folder / "weights.safetensors")),
    }


# -- where the store is --------------------------------------------------------------------------


def test_store_location_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("INBETWEENER_MODELS", str(tmp_path / "from_env"))
    assert models_dir(tmp_path / "flag") == tmp_path / "flag"
    assert models_dir() == tmp_path / "from_env"
    monkeypatch.delenv("INBETWEENER_MODELS")
    monkeypatch.setattr(store_mod.sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert models_dir() == tmp_path / "xdg" / "Inbetweener" / "models"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_models_dir() == tmp_path / "home" / ".local" / "share" / "Inbetweener" / "models"
    monkeypatch.setattr(store_mod.sys, "platform", "darwin")
    assert default_models_dir() == tmp_path / "home" / "Library" / "Application Support" / "Inbetweener" / "models"
    monkeypatch.setattr(store_mod.sys, "platform", "win32")
    monkeypatch.setenv("APPDATA", str(tmp_path / "roaming"))
    assert default_models_dir() == tmp_path / "roaming" / "Inbetweener" / "models"


def test_resolve_names_and_paths(tmp_path):
    store = ModelStore(tmp_path)
    (tmp_path / "model.ckpt").write_bytes(b"x")
    assert store.resolve("tooncrafter") == tmp_path / "model.ckpt"
    assert store.resolve("model.ckpt") == tmp_path / "model.ckpt"
    elsewhere = tmp_path.parent / "elsewhere.ckpt"
    elsewhere.write_bytes(b"y")
    assert store.resolve(str(elsewhere)) == elsewhere
    with pytest.raises(EngineError, match="not found"):
        store.resolve("sketch-encoder")


# -- import ----------------------------------------------------------------------------------------


def test_streaming_writer_matches_safetensors(tmp_path):
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(5, dtype=torch.int64), "c": torch.tensor(2.5)}
    sha = write_safetensors_streaming(
        tmp_path / "out.safetensors",
        [(k, tuple(v.shape), v.dtype if k != "a" else torch.float16) for k, v in tensors.items()],
        tensors.__getitem__,
    )
    loaded = load_file(str(tmp_path / "out.safetensors"))
    assert torch.equal(loaded["a"], tensors["a"].half()) and torch.equal(loaded["b"], tensors["b"])
    assert torch.equal(loaded["c"], tensors["c"])
    assert sha == sha256_of(tmp_path / "out.safetensors")


def test_failed_conversion_leaves_nothing_under_the_final_name(tmp_path):
    def broken(key):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_safetensors_streaming(tmp_path / "out.safetensors", [("a", (2,), torch.float16)], broken)
    assert list(tmp_path.iterdir()) == []


def test_import_converts_to_fp16_and_records(tiny, tmp_path):
    store = ModelStore(tmp_path / "store")
    path, kind, sha = import_weights(store, tiny["folder"] / "weights.safetensors", config=tiny["config"])
    assert kind == "tooncrafter" and path.name == "tooncrafter_512_interp-full-fp16.safetensors"
    stored = load_file(str(path))
    assert stored["model.diffusion_model.out.2.weight"].dtype == torch.float16
    assert stored["alphas_cumprod"].dtype == torch.float32
    assert torch.equal(stored["alphas_cumprod"], tiny["weights"]["alphas_cumprod"])
    index = store.index()[path.name]
    assert index["sha256"] == sha == sha256_of(path) and index["kind"] == "tooncrafter"
    assert sorted(p.name for p in store.root.iterdir()) == ["index.json", path.name]
    model = load_tooncrafter(path, config=tiny["config"])
    assert torch.equal(model.state_dict()["image_proj_model.latents"],
                       tiny["weights"]["image_proj_model.latents"].half().float())


def test_import_merges_a_pruned_file_with_its_clip_file(tiny, tmp_path):
    pruned = {k: v for k, v in tiny["weights"].items() if not k.startswith(("cond_stage_model", "embedder"))}
    save_file(pruned, str(tmp_path / "pruned.safetensors"))
    clip = {k[len("embedder.model.") :]: v for k, v in tiny["weights"].items() if k.startswith("embedder.model.")}
    clip.update({k[len("cond_stage_model.model.") :]: v for k, v in tiny["weights"].items()
                 if k.startswith("cond_stage_model.model.")})
    torch.save(clip, tmp_path / "open_clip_pytorch_model.bin")
    store = ModelStore(tmp_path / "store")
    path, kind, _ = import_weights(store, tmp_path / "pruned.safetensors", clip_path=tmp_path / "open_clip_pytorch_model.bin",
                                   config=tiny["config"])
    assert kind == "tooncrafter"
    assert set(load_file(str(path))) == set(tiny["weights"])


def test_locate_prefers_full_files_and_needs_clip_for_pruned(tiny, tmp_path):
    store = ModelStore(tmp_path)
    with pytest.raises(EngineError, match="inbetween models download"):
        locate_weights(store)
    pruned = {k: v for k, v in tiny["weights"].items() if not k.startswith(("cond_stage_model", "embedder"))}
    save_file(pruned, str(tmp_path / "tooncrafter_512_interp-fp16.safetensors"))
    with pytest.raises(EngineError, match="models download clip"):
        locate_weights(store)
    (tmp_path / "open_clip_pytorch_model.bin").write_bytes(b"clip")
    files = locate_weights(store)
    assert files.tooncrafter.name == "tooncrafter_512_interp-fp16.safetensors"
    assert files.clip.name == "open_clip_pytorch_model.bin" and files.sketch_encoder is None
    save_file(dict(tiny["weights"]), str(tmp_path / "tooncrafter_512_interp-full-fp16.safetensors"))
    (tmp_path / "sketch_encoder.ckpt").write_bytes(b"s")
    files = locate_weights(store)
    assert files.tooncrafter.name == "tooncrafter_512_interp-full-fp16.safetensors" and files.clip is None
    assert files.sketch_encoder.name == "sketch_encoder.ckpt"


# -- downloads -------------------------------------------------------------------------------------


class FileServer:
    """127.0.0.1 HTTP server for one payload: honours Range, can cut a response short or ignore Range."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.cut_after: int | None = None
        self.ignore_range = False
        self.status = 200
        self.ranges: list[str | None] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.ranges.append(self.headers.get("Range"))
                if server.status != 200:
                    self.send_error(server.status)
                    return
                data, start = server.payload, 0
                header = self.headers.get("Range")
                if header and not server.ignore_range:
                    start = int(header.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after is not None:
                    body = body[: server.cut_after]
                    server.cut_after = None
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/model.bin"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def payload():
    return bytes(range(256)) * 4096 + b"tail"  # ~1 MB, several read chunks


@pytest.fixture
def server(payload):
    srv = FileServer(payload)
    yield srv
    srv.close()


def test_download_complete_with_sha(server, payload, tmp_path):
    dest = tmp_path / "model.bin"
    seen = []
    sha = download(server.url, dest, sha256=hashlib.sha256(payload).hexdigest(), progress=lambda d, t: seen.append((d, t)))
    assert dest.read_bytes() == payload and not part_path(dest).exists()
    assert sha == hashlib.sha256(payload).hexdigest()
    assert seen[-1] == (len(payload), len(payload))


def test_interrupted_download_resumes_with_range(server, payload, tmp_path):
    dest = tmp_path / "model.bin"
    server.cut_after = 300_000
    with pytest.raises(DownloadError, match="run it again to resume"):
        download(server.url, dest)
    assert not dest.exists() and part_path(dest).stat().st_size == 300_000
    sha = download(server.url, dest, sha256=hashlib.sha256(payload).hexdigest())
    assert server.ranges == [None, "bytes=300000-"]
    assert dest.read_bytes() == payload and sha == hashlib.sha256(payload).hexdigest()


def test_server_ignoring_range_restarts_cleanly(server, payload, tmp_path):
    dest = tmp_path / "model.bin"
    part_path(dest).write_bytes(payload[:1000])
    server.ignore_range = True
    download(server.url, dest, sha256=hashlib.sha256(payload).hexdigest())
    assert dest.read_bytes() == payload


def test_complete_part_file_is_finished(server, payload, tmp_path):
    dest = tmp_path / "model.bin"
    part_path(dest).write_bytes(payload)
    download(server.url, dest, sha256=hashlib.sha256(payload).hexdigest())
    assert dest.read_bytes() == payload and server.ranges == [f"bytes={len(payload)}-"]


def test_sha_mismatch_removes_the_download(server, tmp_path):
    dest = tmp_path / "model.bin"
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        download(server.url, dest, sha256="0" * 64)
    assert not dest.exists() and not part_path(dest).exists()


def test_http_error_and_cancel(server, tmp_path):
    dest = tmp_path / "model.bin"
    server.status = 404
    with pytest.raises(DownloadError, match="404"):
        download(server.url, dest)
    server.status = 200
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(DownloadError, match="cancelled"):
        download(server.url, dest, cancel=cancel)
    assert not dest.exists()


def test_download_known_checks_and_records(tiny, tmp_path, monkeypatch):
    data = (tiny["folder"] / "weights.safetensors").read_bytes()
    srv = FileServer(data)
    try:
        known = KnownFile("tiny", "tooncrafter_512_interp-full-fp16.safetensors", srv.url, "tooncrafter", "tiny test model")
        monkeypatch.setitem(KNOWN_FILES, "tiny", known)
        store = ModelStore(tmp_path)
        path, sha = download_known(store, "tiny", config=tiny["config"])
        assert sha == hashlib.sha256(data).hexdigest()
        assert store.index()[path.name]["sha256"] == sha and store.index()[path.name]["sha256_published"] is None
        assert locate_weights(store).tooncrafter == path
        # A complete file that is not the expected model is removed, not kept under its name.
        bad = KnownFile("bad", "sketch_encoder.ckpt", srv.url, "sketch_encoder", "wrong content")
        monkeypatch.setitem(KNOWN_FILES, "bad", bad)
        with pytest.raises(EngineError, match="removed"):
            download_known(store, "bad", config=tiny["config"])
        assert not (tmp_path / "sketch_encoder.ckpt").exists()
    finally:
        srv.close()


def test_known_sources_are_https_and_named():
    for name, known in KNOWN_FILES.items():
        assert known.url.startswith("https://huggingface.co/") and known.url.endswith("/" + known.filename)
        assert known.name == name


# -- the command ------------------------------------------------------------------------------------


def test_models_command(tiny, tmp_path, capsys):
    store_dir = tmp_path / "store"
    assert models_main(["models", "--models-dir", str(store_dir), "list"]) == 0
    out = capsys.readouterr().out
    assert str(store_dir) in out and "not installed" in out and "inbetween models download" in out
    assert models_main(["models", "list", "--models-dir", str(store_dir / "after")]) == 0
    assert str(store_dir / "after") in capsys.readouterr().out
    assert models_main(["models", "verify", str(tiny["folder"] / "weights.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "mis-shaped keys" in err and "missing keys" in err
    assert models_main(["models", "--models-dir", str(store_dir), "download", "no-such-model"]) == 2
    assert "unknown name" in capsys.readouterr().err
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 10)
    assert models_main(["models", "verify", str(tmp_path / "junk.safetensors")]) == 1
    assert "truncated" in capsys.readouterr().err
