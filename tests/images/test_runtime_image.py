"""The runtime image, run locked down (non-root, read-only root, no network): its user and
file system are what the operator's pods expect, the default engine loads from the models
inside the image, and `ocr-runtime all-in-one` reads a rendered document correctly."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from ocr_runtime.domain import OcrLine, OcrResult
from tests.images.conftest import (
    LOCKED_DOWN,
    RUNTIME_UID,
    podman,
    podman_exec,
    run_locked_down,
)
from tests.support.documents import RenderedDocument, normalise, read_rows, render_document

pytestmark = pytest.mark.e2e

# The all-in-one server keeps its SQLite database (and filesystem blobs) under ./.local of
# its working directory, /home/ocr: with a read-only root that needs a volume (here a tmpfs).
STATE_DIR = "/home/ocr/.local"
READY_WITHIN_S = 180
LINES = (
    "Monthly statement for your account",
    "Payment received with thanks",
    "Delivery to the Seoul branch office",
)

_PROBE = """
import errno, json, os, socket
def writable(path):
    try:
        with open(os.path.join(path, "probe"), "w") as f:
            f.write("x")
    except OSError as exc:
        return errno.errorcode[exc.errno]
    return "yes"
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "home": os.environ["HOME"],
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "venv": writable("/opt/venv"), "etc": writable("/etc"), "tmp": writable("/tmp"),
}))
"""

_LOAD = """
from ocr_runtime.adapters.engines import build_engine
from ocr_runtime.core.settings import Settings
engine = build_engine(Settings())
engine.load()
print(engine.name, engine.loaded)
"""

# Runs inside the container (stdlib only): waits for /readyz, then POSTs the PNG read from
# stdin to /v1/ocr and prints the JSON answer.
_CLIENT = """
import sys, time, urllib.request
base, boundary = "http://127.0.0.1:8000", sys.argv[2]
deadline = time.monotonic() + float(sys.argv[1])
while True:
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=5) as answer:
            if answer.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("the all-in-one server did not become ready")
    time.sleep(0.5)
head = ("--" + boundary + "\\r\\nContent-Disposition: form-data; name=\\"image\\"; "
        "filename=\\"page.png\\"\\r\\nContent-Type: image/png\\r\\n\\r\\n").encode()
body = head + sys.stdin.buffer.read() + ("\\r\\n--" + boundary + "--\\r\\n").encode()
request = urllib.request.Request(base + "/v1/ocr?timeout=120", data=body, headers={
    "Content-Type": "multipart/form-data; boundary=" + boundary})
with urllib.request.urlopen(request, timeout=180) as answer:
    print(answer.read().decode())
"""


def test_runs_as_the_non_root_user_on_a_read_only_root(runtime_image: str) -> None:
    done = run_locked_down(runtime_image, "-c", _PROBE, entrypoint="python")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert (seen["uid"], seen["gid"]) == (RUNTIME_UID, RUNTIME_UID)
    assert seen["home"] == "/home/ocr"
    assert seen["interfaces"] == ["lo"], "--network=none leaves only the loopback"
    assert seen["venv"] == seen["etc"] == "EROFS"
    assert seen["tmp"] == "yes"
    user = podman("image", "inspect", "--format", "{{.Config.User}}", runtime_image)
    assert user.stdout.strip() == f"{RUNTIME_UID}:{RUNTIME_UID}", "numeric: runAsNonRoot checks it"


def test_engine_loads_offline_from_the_models_in_the_image(runtime_image: str) -> None:
    done = run_locked_down(runtime_image, "-c", _LOAD, entrypoint="python")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["rapidocr-onnx", "True"]


@pytest.fixture
def all_in_one(runtime_image: str) -> Iterator[str]:
    """A detached `ocr-runtime all-in-one` container; its name."""
    name = f"ocr-images-test-{uuid.uuid4().hex[:8]}"
    state = f"--tmpfs={STATE_DIR}:rw,nosuid,nodev,size=64m,mode=1777"
    started = podman("run", "-d", "--name", name, *LOCKED_DOWN, state, runtime_image, "all-in-one")
    assert started.returncode == 0, started.stderr
    try:
        yield name
    finally:
        podman("rm", "-f", "-t", "5", name)


def _line(view: dict[str, Any]) -> OcrLine:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = view["box"]
    return OcrLine(view["text"], view["confidence"], ((x0, y0), (x1, y1), (x2, y2), (x3, y3)))


def _result(answer: dict[str, Any]) -> OcrResult:
    """The JSON of a finished job as the domain result `read_rows` takes."""
    assert answer["status"] == "succeeded", answer
    return OcrResult(tuple(_line(view) for view in answer["result"]["lines"]))


def _png(document: RenderedDocument) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(document.image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_all_in_one_reads_a_rendered_document(all_in_one: str) -> None:
    document = render_document(LINES, face="DejaVuSans.ttf", size=36)
    client = ("python", "-c", _CLIENT, str(READY_WITHIN_S), uuid.uuid4().hex)
    done = podman_exec(all_in_one, *client, stdin=_png(document), timeout=READY_WITHIN_S + 240)
    if done.returncode != 0:
        logs = podman("logs", all_in_one).stderr[-3000:]
        pytest.fail(f"OCR inside the container failed: {done.stderr[-2000:]!r}\nserver:\n{logs}")
    answer = json.loads(done.stdout)
    rows = [normalise(row) for row in read_rows(document, _result(answer))]
    assert rows == list(LINES)


def test_our_package_is_a_small_layer_above_the_dependencies(runtime_image: str) -> None:
    """A source-only change rebuilds only the top file layer: the dependencies below it are
    reused by the build, by every node that already holds them, and by any registry."""
    done = podman("history", "--format", "json", runtime_image)
    assert done.returncode == 0, done.stderr
    sizes = [int(layer["size"]) for layer in json.loads(done.stdout) if layer["size"]]
    ours, dependencies = sizes[0], sizes[1]
    assert ours < 5_000_000, "the package layer holds more than our package"
    assert dependencies > 100_000_000, "the layer below should hold the dependency venv"
