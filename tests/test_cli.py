"""The `inbetween` command as an animator uses it: outputs, numbering, and one-line errors (exit 2)."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from tests.helpers import disc_keyframe, save_png


@pytest.fixture()
def pair(tmp_path):
    a = save_png(tmp_path / "key_a.png", disc_keyframe(20, 32))
    b = save_png(tmp_path / "key_b.png", disc_keyframe(76, 32))
    return a, b


def run(argv, capsys):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def error_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("inbetween: error: ") or lines[0].startswith("usage") or "error" in lines[0]
    return lines[0]


def test_two_keys_with_count(pair, tmp_path, capsys):
    out = tmp_path / "shots" / "walk"
    code, err = run([*pair, "--count", "3", "--spacing", "ease-in-out", "--out", out, "--name", "walk",
                     "--backend", "rife"], capsys)
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"walk_{i:04d}.png" for i in range(1, 6)]
    first = np.asarray(Image.open(out / "walk_0001.png"))
    assert np.array_equal(first, np.asarray(Image.open(pair[0])))  # the key itself, untouched
    assert "rife" in err


def test_multi_key_on_twos_with_start_number(tmp_path, capsys):
    paths = [save_png(tmp_path / f"k{i}.png", disc_keyframe(x, 32)) for i, x in enumerate((20, 48, 76))]
    out = tmp_path / "hop"
    code, err = run([*paths, "--at", "0,4,8", "--on", "twos", "--out", out, "--name", "hop",
                     "--start-number", "101", "--padding", "3", "--backend", "rife"], capsys)
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"hop_{i:03d}.png" for i in range(101, 110)]
    held = [np.asarray(Image.open(out / f"hop_{i:03d}.png")) for i in (103, 104)]
    assert np.array_equal(held[0], held[1])  # frame 3 holds the drawing of frame 2


def test_auto_says_which_backend_ran(pair, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("INBETWEENER_MODELS", str(tmp_path / "no_models"))
    code, err = run([*pair, "--count", "1", "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    assert "drawn by the cel backend" in err


def test_contact_sheet_and_gif(pair, tmp_path, capsys):
    out = tmp_path / "o"
    code, err = run([*pair, "--count", "2", "--out", out, "--name", "ball", "--contact-sheet", "--gif",
                     "--backend", "rife"], capsys)
    assert code == 0, err
    assert (out / "ball_contact.png").exists()
    gif = Image.open(out / "ball.gif")
    assert gif.n_frames == 4


@pytest.mark.parametrize(
    "make_args, expected",
    [
        (lambda d, a, b: [a, d / "missing.png"], "missing.png: file not found"),
        (lambda d, a, b: [a, d / "notes.png"], "notes.png: not an image"),
        (lambda d, a, b: [a, b, "--count", "0"], "count must be at least 1"),
        (lambda d, a, b: [a, b, "--count", "100000"], "count 100000 is more than"),
        (lambda d, a, b: [a, d / "big.png"], "is 80x80 but"),
        (lambda d, a, b: [a], "need at least two keyframes"),
        (lambda d, a, b: [a, b, "--at", "0,0"], "must increase"),
        (lambda d, a, b: [a, b, "--at", "0,8,16"], "--at lists 3 frames for 2 keyframes"),
        (lambda d, a, b: [a, b, "--spacing", "wobbly"], "spacing 'wobbly'"),
        (lambda d, a, b: [a, b, "--sketch", f"3={a}", "--backend", "rife"], "sketch guidance needs the cel or tooncrafter backend, but rife"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(pair, tmp_path, capsys, make_args, expected):
    (tmp_path / "notes.png").write_text("these are not pixels")
    save_png(tmp_path / "big.png", disc_keyframe(40, 40, width=80, height=80))
    out = tmp_path / "out"
    code, err = run([*make_args(tmp_path, *pair), "--out", out, "--backend", "rife"], capsys)
    assert code == 2
    assert expected in error_line(err)
    assert not out.exists() or not any(out.iterdir())


def test_fit_accepts_other_sizes(pair, tmp_path, capsys):
    big = save_png(tmp_path / "big.png", disc_keyframe(40, 40, width=80, height=80))
    code, err = run([pair[0], big, "--fit", "--count", "1", "--out", tmp_path / "o", "--backend", "rife"], capsys)
    assert code == 0, err


def test_existing_frames_are_never_overwritten_without_asking(pair, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "walk_0002.png").write_bytes(b"the artist's own drawing")
    code, err = run([*pair, "--count", "3", "--out", out, "--name", "walk", "--backend", "rife"], capsys)
    assert code == 2
    assert "walk_0002.png" in error_line(err)
    assert (out / "walk_0002.png").read_bytes() == b"the artist's own drawing"
    assert sorted(p.name for p in out.iterdir()) == ["walk_0002.png"]
    code, err = run([*pair, "--count", "3", "--out", out, "--name", "walk", "--backend", "rife", "--overwrite"], capsys)
    assert code == 0, err
    assert len(list(out.glob("walk_*.png"))) == 5


def test_tooncrafter_without_weights_is_explained(pair, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("INBETWEENER_MODELS", str(tmp_path / "empty"))
    code, err = run([*pair, "--out", tmp_path / "o", "--backend", "tooncrafter"], capsys)
    assert code == 2
    assert "inbetween models" in error_line(err)


def test_help_speaks_animation():
    out = subprocess.run([sys.executable, "-m", "engine", "--help"], capture_output=True, text=True, check=True).stdout
    for word in ("keyframe", "in-between", "--spacing", "ease-in-out", "--on", "twos", "--backend", "--sketch"):
        assert word in out


# --- hardening: output folder checked first, explicit weights, devices, remote = local ------------


@pytest.fixture()
def no_generation(monkeypatch):
    """Records every generation; a check that must come first leaves it empty."""
    from engine import pipeline

    calls = []
    real = pipeline.generate

    def recording(request, **kw):
        calls.append(request)
        return real(request, **kw)

    monkeypatch.setattr(pipeline, "generate", recording)
    return calls


def test_out_that_is_a_file_is_refused_before_generating(pair, tmp_path, capsys, no_generation):
    out = tmp_path / "render.png"
    out.write_bytes(b"an existing file")
    code, err = run([*pair, "--count", "2", "--out", out, "--backend", "rife"], capsys)
    assert code == 2
    line = error_line(err)
    assert "render.png is a file, not a folder" in line and "[Errno" not in line
    assert no_generation == [] and out.read_bytes() == b"an existing file"


def test_read_only_out_is_refused_before_generating(pair, tmp_path, capsys, no_generation, monkeypatch):
    import errno
    import os

    out = tmp_path / "mounted_read_only"
    out.mkdir()
    real_open = os.open

    def read_only_open(path, flags, *args, **kw):
        if str(path).startswith(str(out)) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", read_only_open)
    code, err = run([*pair, "--count", "2", "--out", out, "--backend", "rife"], capsys)
    assert code == 2
    line = error_line(err)
    assert "mounted_read_only" in line and "read-only" in line and "[Errno" not in line
    assert no_generation == []


@pytest.mark.parametrize("weights", ["missing.ckpt", "broken.ckpt"])
def test_explicit_checkpoint_that_cannot_be_used_is_an_error_under_auto(pair, tmp_path, capsys, monkeypatch, weights):
    monkeypatch.setenv("INBETWEENER_MODELS", str(tmp_path / "no_models"))
    (tmp_path / "broken.ckpt").write_bytes(b"PK\x03\x04 not really a checkpoint")
    code, err = run([*pair, "--count", "1", "--out", tmp_path / "o", "--checkpoint", tmp_path / weights], capsys)
    assert code == 2, err
    line = error_line(err)
    assert weights in line and "--checkpoint" in line and "drawn by" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("device", ["meta", "xpu", "cuda:x", "gpu0"])
def test_unknown_device_is_refused(pair, tmp_path, capsys, device):
    code, err = run([*pair, "--count", "1", "--out", tmp_path / "o", "--device", device, "--backend", "rife"], capsys)
    assert code == 2
    assert f"device {device!r}" in error_line(err)


def test_remote_run_accepts_what_the_local_run_accepts(pair, tmp_path, capsys):
    """`--at 0,300 --count 3` runs locally; the same job sent with --server must run too."""
    from engine.backends import availability
    from engine.server.runner import EngineServer, ServerConfig

    if not availability("rife")[0]:
        pytest.skip("the rife backend is not available here")
    args = [*pair, "--at", "0,300", "--count", "3", "--backend", "rife", "--no-holds", "--name", "w"]
    code, err = run([*args, "--out", tmp_path / "local"], capsys)
    assert code == 0, err
    server = EngineServer(ServerConfig(state_dir=tmp_path / "state", advertise=False)).start_in_thread()
    try:
        code, err = run([*args, "--out", tmp_path / "remote", "--server", server.url,
                         "--token-file", server.token_file], capsys)
    finally:
        server.stop()
    assert code == 0, err
    local = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert sorted(p.name for p in (tmp_path / "remote").iterdir()) == local
    assert len(local) == 6  # two keys, three in-betweens, the timing sheet


@pytest.mark.parametrize("hostile, expected", [("claims_60000", "60000x60000 is larger than the limit"),
                                                ("text_bomb", "damaged or unreadable image")])
def test_hostile_png_keyframes_are_one_line_errors(pair, tmp_path, capsys, hostile, expected):
    from tests.helpers import png_claiming, png_with_text_bomb

    path = tmp_path / f"{hostile}.png"
    path.write_bytes(png_claiming(60000, 60000) if hostile == "claims_60000" else png_with_text_bomb())
    code, err = run([pair[0], path, "--count", "1", "--out", tmp_path / "o", "--backend", "rife"], capsys)
    assert code == 2
    line = error_line(err)
    assert f"{hostile}.png" in line and expected in line
