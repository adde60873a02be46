"""The grader's sandbox: a student's answer cannot touch the teacher's machine.

One grading run (``python -m resnet_edu grade``, in this process) of a zoo of answers that
attack the machine from inside the code the grader really runs: a default argument, a
class body, a block's ``__init__`` and the body of a function the check calls. The house
policy is switched off for the run (as if a student had found a hole in it, or as routes it
does not see, ``torch.os`` and the like, would allow), so every attack really runs in the
answering process and only the sandbox stands in its way. Each must fail, its row must say
what happened, the honest rows of the same run must pass, and the outside world must be
unchanged: hashes of the files it aimed at, nothing new in the folders, nothing received by
the TCP, UDP and Unix listeners this test opens, no signal received, the fork server alive.

Also: the sandbox's refusal when it is unavailable, ``--no-sandbox``, bounded feedback, and
the static rules that follow attribute chains (``torch.os``, ``typing.sys.modules``).
"""
from __future__ import annotations

import copy
import csv
import hashlib
import os
import re
import secrets
import signal
import socket
import sysconfig
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from resnet_edu.classroom import grading, load_masters, rules, sandbox, student_notebook
from resnet_edu.classroom.report import GradeRow
from resnet_edu.classroom.rules import policy_problems, rule_problems
from resnet_edu.cli import main as cli_main
from resnet_edu.exercises import exercises
from stray_processes import running_now, strays

# CI (Linux with Landlock, as root) must run these; elsewhere they skip and say why
pytestmark = pytest.mark.skipif(not sandbox.availability()[0] and not os.environ.get("CI"),
                                reason=f"no sandbox here: {sandbox.availability()[1]}")

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
PACKAGE = ROOT / "resnet_edu"
MASTERS = load_masters(BOOK)
EX = {e.id: e for m in MASTERS.values() for e in m.exercises}
CH01, CH05 = "01_convolution.ipynb", "05_original_post_debugged.ipynb"
TOKEN = secrets.token_hex(8)
CANARY = f"RESNET_EDU_TEACHER_TOKEN_{TOKEN}"     # an environment variable of the grader's
HONEST_CONV = """\
import torch
import torch.nn.functional as F


def conv2d_by_hand(x, weight, bias=None, stride=1, padding=0):
    kh, kw = weight.shape[2], weight.shape[3]
    xp = F.pad(x, (padding, padding, padding, padding))
    patches = xp.unfold(2, kh, stride).unfold(3, kw, stride)    # (N, C, H', W', kh, kw)
    out = torch.einsum("nchwkl,ockl->nohw", patches, weight)
    return out if bias is None else out + bias.view(1, -1, 1, 1)
"""


def student(chapter: str, cache={}):  # noqa: B006 - a cache of the student versions
    if chapter not in cache:
        cache[chapter] = student_notebook(nbformat.read(BOOK / chapter, as_version=4),
                                          chapter).notebook
    return copy.deepcopy(cache[chapter])


def answer(chapter: str, exercise: str, source: str):
    nb = student(chapter)
    next(c for c in nb.cells if c.id == EX[exercise].answer_cells[0]).source = source
    return nb


def conv_answer(form: str, attack: str) -> str:
    """A ch01 answer that runs ``attack`` (the body of a function ``attack()``) when the
    function is defined (``default``), when a class is defined (``class``), or when the
    check calls the student's function (``call``)."""
    head = "import os\nimport signal\nimport socket\nimport threading\nimport time\n" \
           "import torch\n\n\ndef attack():\n" + textwrap.indent(attack, "    ") + "\n\n\n"
    if form == "default":
        return head + ("def conv2d_by_hand(x, weight, bias=None, stride=1, padding=0, "
                       "_=attack()):\n    raise NotImplementedError\n")
    if form == "class":
        return head + ("class Attack:\n    done = attack()\n\n\ndef conv2d_by_hand(x, weight, "
                       "bias=None, stride=1, padding=0):\n    raise NotImplementedError\n")
    return head + ("def conv2d_by_hand(x, weight, bias=None, stride=1, padding=0):\n"
                   "    attack()\n    return torch.zeros(1)\n")


def block_answer(attack: str) -> str:
    """A ch05 answer whose block runs ``attack`` in its ``__init__``."""
    return ("import os\nimport socket\nimport torch\nfrom torch import nn\n\n\n"
            "class FixedResidualBlock(nn.Module):\n"
            "    def __init__(self, in_channels, out_channels, stride=1):\n"
            "        super().__init__()\n" + textwrap.indent(attack, "        ") + "\n\n"
            "    def forward(self, x):\n        return x\n")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def listing(folder: Path) -> set:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


class World:
    """The outside world the attacks aim at, and what it looked like before."""

    def __init__(self, tmp: Path):
        self.home = Path.home()
        self.secret = self.home / f".resnet_edu-sandbox-secret-{TOKEN}"
        self.secret.write_text(f"SECRET-{TOKEN}\n")
        self.bashrc = self.home / f".resnet_edu-sandbox-bashrc-{TOKEN}"
        self.bashrc.write_text("# the teacher's shell settings\n")
        self.in_package = PACKAGE / f"sandbox-probe-{TOKEN}.txt"
        self.in_package.write_text("the package's file\n")
        self.site = Path(sysconfig.get_paths()["purelib"])
        self.folders = {"home": self.home, "package": PACKAGE, "site": self.site,
                        "master": BOOK, "grader": tmp / "grader", "out": tmp / "sheet",
                        "submissions": tmp / "submissions", "tmp": Path("/tmp")}
        for f in self.folders.values():
            f.mkdir(parents=True, exist_ok=True)
        self.out = self.folders["out"] / "results.csv"
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.unix_path = str(tmp / "listener.sock")
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(self.unix_path)
        self.unix.listen()
        self.abstract = f"\0resnet-edu-sandbox-{TOKEN}"
        self.unix_abstract = socket.socket(socket.AF_UNIX)
        self.unix_abstract.bind(self.abstract)
        self.unix_abstract.listen()
        for s in (self.tcp, self.udp, self.unix, self.unix_abstract):
            s.setblocking(False)
        self.signals = []
        self.before = {}

    def snapshot(self) -> dict:
        planted = [folder / f"sandbox-new-{TOKEN}.txt" for folder in self.folders.values()]
        files = [self.secret, self.bashrc, self.in_package, *self.submissions(), *planted,
                 self.site / f"sandbox-{TOKEN}.pth"]
        own = ("grader", "out", "submissions")          # the folders only this test uses
        return {"files": {str(p): digest(p) for p in files},
                "folders": {k: listing(self.folders[k]) - {self.out.name} for k in own}}

    def submissions(self):
        return sorted(self.folders["submissions"].rglob("*.ipynb"))

    def received(self) -> list:
        got = []
        for s in (self.tcp, self.unix, self.unix_abstract):
            try:
                got.append(s.accept())
            except (BlockingIOError, OSError):
                pass
        try:
            got.append(self.udp.recvfrom(1024))
        except (BlockingIOError, OSError):
            pass
        return got

    def close(self):
        for s in (self.tcp, self.udp, self.unix, self.unix_abstract):
            s.close()
        for p in (self.secret, self.bashrc, self.in_package):
            p.unlink(missing_ok=True)
        for name in (f"sandbox-{TOKEN}.pth", f"sandbox-new-{TOKEN}.txt"):
            for folder in self.folders.values():
                (folder / name).unlink(missing_ok=True)


def forkserver_pid() -> int:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if b"forkserver" in cmd and int(stat[1]) == os.getpid():
            return int(pid)
    return 0


def attacks(w: World, grader: int, server: int) -> dict:
    """case -> (chapter, exercise, answer source, expected status)."""
    new = f"sandbox-new-{TOKEN}.txt"
    f = w.folders

    def write(folder):
        return f"open({str(folder / new)!r}, 'w').write('x')"
    conv = {
        "write-home": ("default", f"open({str(w.bashrc)!r}, 'a').write('rm -rf ~')"),
        "create-in-home": ("class", write(f["home"])),
        "write-package": ("class", f"open({str(w.in_package)!r}, 'a').write('patched')"),
        "write-master": ("call", write(f["master"])),
        "write-submissions": ("default", write(f["submissions"])),
        "write-out-folder": ("class", write(f["out"])),
        "write-grader-folder": ("call", write(f["grader"])),
        "write-tmp": ("default", write(f["tmp"])),
        "read-home": ("call", f"raise ValueError(open({str(w.secret)!r}).read())"),
        "list-home": ("default", f"raise ValueError(str(os.listdir({str(w.home)!r})))"),
        "tcp": ("call", f"socket.create_connection(('127.0.0.1', {w.tcp.getsockname()[1]}), "
                        "timeout=2).sendall(b'hello')"),
        "udp": ("default", f"socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'hi', "
                           f"('127.0.0.1', {w.udp.getsockname()[1]}))"),
        "unix": ("class", f"socket.socket(socket.AF_UNIX).connect({w.unix_path!r})"),
        "unix-abstract": ("call", f"socket.socket(socket.AF_UNIX).connect({w.abstract!r})"),
        "signal-grader": ("call", f"os.kill({grader}, signal.SIGUSR1)"),
        "signal-forkserver": ("default", f"os.kill({server}, signal.SIGUSR1)"),
        "signal-everyone": ("class", "os.kill(-1, 0)"),     # (0: harmless if it got through)
        "fork-bomb": ("default", "for _ in range(64):\n    if os.fork() == 0:\n"
                                 "        time.sleep(20)\n        os._exit(0)"),
        "memory-8gb": ("call", "torch.ones(2 * 1024 ** 3)"),
        "file-2gb": ("default", "with open('big', 'wb') as f:\n    for _ in range(2048):\n"
                                "        f.write(bytes(2 ** 20))"),
        # what multiprocessing leaves open leads to unconfined processes (its resource
        # tracker, the fork server): only the pipe to the grader may be left
        "inherited-descriptors": ("default", "fds = []\nfor fd in range(3, 1024):\n"
                                             "    try:\n        os.fstat(fd)\n"
                                             "        fds.append(fd)\n    except OSError:\n"
                                             "        pass\nraise ValueError(f'open {fds}')"),
        "environment": ("default", "raise ValueError('environ ' + ' '.join(sorted(os.environ)))"),
    }
    cases = {case: (CH01, "ch01-conv2d-by-hand", conv_answer(form, body),
                    "failed" if form == "call" else "error")
             for case, (form, body) in conv.items()}
    late = ("def later():\n    time.sleep(1)\n"
            f"    open({str(w.bashrc)!r}, 'a').write('late')\n"
            f"    os.kill({grader}, signal.SIGUSR1)\n"
            "threading.Thread(target=later, daemon=True).start()")
    cases["thread-after-return"] = (CH01, "ch01-conv2d-by-hand", conv_answer("default", late),
                                    "unsolved")
    block = {
        "site-packages-pth": f"open({str(w.site / f'sandbox-{TOKEN}.pth')!r}, 'w')"
                             ".write('import os')",
        "tcp-from-init": f"socket.create_connection(('127.0.0.1', {w.tcp.getsockname()[1]}))",
    }
    for case, body in block.items():
        cases[case] = (CH05, "ch05-fix-the-post", block_answer(body), "failed")
    cases["honest-ch01"] = (CH01, "ch01-conv2d-by-hand", HONEST_CONV, "passed")
    return cases


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sandbox")
    w = World(tmp)
    received = []
    old_handler = signal.signal(signal.SIGUSR1, lambda *a: received.append(a[0]))
    os.environ[CANARY] = "secret"
    from resnet_edu.classroom.session import start_server

    start_server()
    server = forkserver_pid()
    assert server, "the fork server was not found"
    cases = attacks(w, os.getpid(), server)
    for case, (chapter, exercise, source, _) in cases.items():
        (w.folders["submissions"] / case).mkdir()
        nbformat.write(answer(chapter, exercise, source),
                       w.folders["submissions"] / case / chapter)
    w.before = w.snapshot()
    running_before = running_now()
    cwd = os.getcwd()
    try:
        os.chdir(w.folders["grader"])
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(rules, "policy_problems", lambda code: [])
            code = cli_main(["grade", str(w.folders["submissions"]), "--master", str(BOOK),
                             "--out", str(w.out), "--timeout", "30"])
        time.sleep(2.5)                       # the late thread would strike after 1 s
        after = w.snapshot()
        got = w.received()
        rows = {(r["student"], r["exercise"]): r
                for r in csv.DictReader(open(w.out, encoding="utf-8"))}
        yield dict(cases=cases, code=code, rows=rows, before=w.before, after=after,
                   received=got, signals=list(received), server=server, world=w,
                   running_before=running_before)
    finally:
        os.chdir(cwd)
        os.environ.pop(CANARY, None)
        signal.signal(signal.SIGUSR1, old_handler)
        w.close()


def test_every_attack_fails_and_its_row_says_why(zoo):
    wrong = {}
    for case, (_, exercise, _, status) in zoo["cases"].items():
        row = zoo["rows"][(case, exercise)]
        if (row["status"], float(row["score"]) > 0) != (status, status == "passed"):
            wrong[case] = (row["status"], row["score"], row["feedback"][:300])
    assert wrong == {}
    for case, (_, exercise, _, status) in zoo["cases"].items():
        feedback = zoo["rows"][(case, exercise)]["feedback"]
        if status in ("error", "failed") and case not in ("memory-8gb", "file-2gb",
                                                          "inherited-descriptors", "environment"):
            assert "sandbox" in feedback or "Permission denied" in feedback or \
                "Operation not permitted" in feedback, (case, feedback)
    assert "memory" in zoo["rows"][("memory-8gb", "ch01-conv2d-by-hand")]["feedback"]
    assert "size of a file" in zoo["rows"][("file-2gb", "ch01-conv2d-by-hand")]["feedback"]
    fds = zoo["rows"][("inherited-descriptors", "ch01-conv2d-by-hand")]["feedback"]
    assert re.search(r"open \[\d+\]", fds), fds                  # one: the pipe
    env = zoo["rows"][("environment", "ch01-conv2d-by-hand")]["feedback"]
    names = set(env.split("environ ")[1].split(" (")[0].split())
    assert names <= {"HOME", "TMPDIR", "PATH", "LANG", "PYTHONPATH", "VIRTUAL_ENV",
                     "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"} | \
        {n for n in names if n.startswith("LC_")}, env
    assert CANARY not in env


def test_the_outside_world_is_unchanged(zoo):
    assert zoo["after"] == zoo["before"]
    assert zoo["received"] == []
    assert zoo["signals"] == []
    os.kill(zoo["server"], 0)                 # the fork server is alive (raises if not)
    assert strays(zoo["running_before"]) == set()


def test_no_secret_reaches_the_sheet_and_every_row_names_its_sandbox(zoo):
    sheet = zoo["world"].out.read_text(encoding="utf-8")
    assert f"SECRET-{TOKEN}" not in sheet                     # the file's contents
    listed = zoo["rows"][("list-home", "ch01-conv2d-by-hand")]["feedback"]
    assert "sandbox-bashrc" not in listed                     # the folder's listing
    names = {r["sandbox"] for r in zoo["rows"].values()}
    assert names == {sandbox.Confinement().name}
    assert zoo["code"] == 0


def test_unavailable_sandbox_refuses_before_any_code_runs(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "alice"
    folder.mkdir()
    marker = tmp_path / "ran"
    source = conv_answer("default", f"open({str(marker)!r}, 'w')")
    nbformat.write(answer(CH01, "ch01-conv2d-by-hand", source), folder / CH01)
    monkeypatch.setattr(sandbox, "availability", lambda: (False, "no Landlock (test)"))
    code = cli_main(["grade", str(folder), "--master", str(BOOK),
                     "--out", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "--no-sandbox" in err and "no Landlock (test)" in err
    assert not (tmp_path / "r.csv").exists() and not marker.exists()


def test_no_sandbox_still_grades_and_says_so(tmp_path, capsys):
    folder = tmp_path / "alice"
    folder.mkdir()
    nbformat.write(answer(CH01, "ch01-conv2d-by-hand", HONEST_CONV), folder / CH01)
    code = cli_main(["grade", str(folder), "--master", str(BOOK), "--no-sandbox",
                     "--out", str(tmp_path / "r.csv")])
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(open(tmp_path / "r.csv", encoding="utf-8")))
    assert code == 0 and "warning: --no-sandbox" in err
    assert [(r["status"], r["sandbox"]) for r in rows] == [("passed", "none (--no-sandbox)")]
    assert "none (--no-sandbox)" in out


def test_feedback_is_bounded_and_printable():
    row = GradeRow("a", "a.ipynb", "x", 0, 1, "error", "\x1b[31mred\x07" + "y" * 5000)
    assert "\x1b" not in row.feedback and "\x07" not in row.feedback
    assert len(row.feedback) <= 1000 and row.feedback.startswith(" [31mred")


# ----------------------------------------------------------------------------- static rules
@pytest.mark.parametrize("source, reached", [
    ("import torch\n\n\ndef f(_=torch.os.system('true')):\n    pass\n", "`torch.os` is the module `os`"),
    ("from torch import os\n\n\ndef f():\n    pass\n", "`torch.os` is the module `os`"),
    ("import typing\n\n\nclass A:\n    b = typing.sys.modules\n", "`typing.sys` is the module `sys`"),
    ("import torch\n\n\ndef f(p):\n    return torch.serialization.load(p)\n",
     "`torch.serialization.load` is not allowed"),
])
def test_attribute_chains_are_followed_to_what_they_reach(source, reached):
    assert any(reached in p for p in policy_problems(source)), policy_problems(source)


def test_a_forbidden_object_under_another_name_breaks_the_rule():
    rules = exercises()["ch01-conv2d-by-hand"].rules
    code = ("import torch.nn.functional as F\nimport torch\n\n\ndef conv2d_by_hand(x, w):\n"
            "    return torch.nn.functional.torch.conv2d(x, w)\n")
    problems = rule_problems(code, rules, ["conv2d_by_hand"], ["def"])
    assert problems and all("Do not call `F.conv2d`" in p for p in problems), problems


def test_honest_answers_pass_the_chain_rules():
    assert policy_problems(HONEST_CONV) == []
    source = ("import math\nimport numpy as np\nimport functools\nimport torch\n"
              "from torch import nn\nimport torch.nn.functional as F\n\n\n"
              "def f(x):\n    return F.relu(nn.functional.pad(x, (1, 1))) * math.sqrt(2) + "
              "np.float32(1) + functools.reduce(lambda a, b: a + b, [1])\n")
    assert policy_problems(source) == []


def test_library_block_reached_by_a_hidden_route_scores_zero_with_the_rule(tmp_path):
    """The issue's third answer: chapter 5's "write the block yourself" answered with
    resnet_edu's own block, reached through ``typing.sys.modules``: refused statically
    with the policy on, and by the run-time watch of the library's blocks with it off."""
    source = ("import typing\nfrom torch import nn\n\n\nclass FixedResidualBlock(nn.Module):\n"
              "    def __init__(self, in_channels, out_channels, stride=1):\n"
              "        super().__init__()\n"
              "        blocks = typing.sys.modules['resnet_edu.blocks']\n"
              "        inner = blocks.BasicBlock(in_channels, out_channels, stride)\n"
              "        for name, child in inner.named_children():\n"
              "            self.add_module(name, child)\n"
              "        self.run = inner.forward\n\n"
              "    def forward(self, x):\n        return self.run(x)\n")
    folder = tmp_path / "mallory"
    folder.mkdir()
    nbformat.write(answer(CH05, "ch05-fix-the-post", source), folder / CH05)
    on = grading.grade_notebooks([folder], MASTERS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rules, "policy_problems", lambda code: [])
        off = grading.grade_notebooks([folder], MASTERS)
    for result, phrase in ((on, "`typing.sys` is the module `sys`"),
                           (off, "resnet_edu.blocks.BasicBlock")):
        row = next(r for r in result[0].rows if r.exercise == "ch05-fix-the-post")
        assert (row.score, row.status) == (0, "rule") and phrase in row.feedback, row
    row = next(r for r in off[0].rows if r.exercise == "ch05-fix-the-post")
    assert "Write the block yourself" in row.feedback


def test_the_run_time_watch_sees_the_library_blocks_and_restores_them():
    from resnet_edu.blocks import BasicBlock
    from resnet_edu.classroom.tripwires import tripwires
    from resnet_edu.exercises._kit import OWN_BLOCK

    init, forward = BasicBlock.__init__, BasicBlock.forward
    with tripwires(OWN_BLOCK.forbidden) as tripped:
        BasicBlock(4, 4)
    assert tripped == {"used `resnet_edu.blocks.BasicBlock`"}
    with tripwires(("torch.nn.functional.conv",)) as tripped:   # not watched for others
        BasicBlock(4, 4)
    assert tripped == set()
    assert (BasicBlock.__init__, BasicBlock.forward) == (init, forward)


# ----------------------------------------------------------------------------- the BPF filter
def run_filter(code: bytes, arch: int, nr: int, arg0: int = 0, arg1: int = 0,
               arg2: int = 0) -> int:
    """A small classic-BPF interpreter for the instructions the filter uses."""
    import struct

    data = {0: nr, 4: arch}
    for i, value in enumerate((arg0, arg1, arg2)):
        data[16 + 8 * i], data[20 + 8 * i] = value & 0xFFFFFFFF, (value >> 32) & 0xFFFFFFFF
    ops = [struct.unpack("=HBBI", code[i:i + 8]) for i in range(0, len(code), 8)]
    pc, acc = 0, 0
    while True:
        op, jt, jf, k = ops[pc]
        if op == 0x20:
            acc = data[k]
        elif op == 0x06:
            return k
        else:
            taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[op]
            pc += jt if taken else jf
        pc += 1


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_the_seccomp_program_decides_as_documented(arch):
    from resnet_edu.classroom import seccomp, syscalls

    numbers, audit = syscalls.table(arch), syscalls.AUDIT_ARCH[arch]
    code = seccomp.program(4242, arch)
    allow, eperm, enosys = 0x7FFF0000, 0x00050001, 0x00050026
    assert run_filter(code, 0x40000003, 1) == 0x80000000          # another ABI: killed
    for name in seccomp.DENIED:
        if numbers[name] is not None:     # (prlimit64 with 1 as its pid: setting limits)
            assert run_filter(code, audit, numbers[name], 1) == eperm, name
    assert run_filter(code, audit, numbers["clone3"]) == enosys
    assert run_filter(code, audit, numbers["clone"], 0x00010000 | 0x100) == allow   # a thread
    assert run_filter(code, audit, numbers["clone"], 0x11) == eperm          # a process
    for name in seccomp.SIGNALS_TO_SELF:
        for pid, verdict in ((4242, allow), (0, allow), (-4242, allow), (1, eperm),
                             (-1, eperm), (4243, eperm)):
            assert run_filter(code, audit, numbers[name], pid) == verdict, (name, pid)
    for name in ("landlock_add_rule", "landlock_restrict_self"):     # everything else runs
        assert run_filter(code, audit, numbers[name]) == allow
    assert run_filter(code, audit, 0) == allow and run_filter(code, audit, 63) == allow


def test_seccomp_arguments_that_reach_other_processes(arch="x86_64"):
    """The red team's routes: the kernel signalling for the answer (F_SETOWN, F_SETSIG,
    FIOSETOWN), another process's priority, limits set rather than read."""
    from resnet_edu.classroom import seccomp, syscalls

    numbers, audit = syscalls.table(arch), syscalls.AUDIT_ARCH[arch]
    code = seccomp.program(4242, arch)
    allow, eperm = 0x7FFF0000, 0x00050001

    def run(name, **args):
        return run_filter(code, audit, numbers[name], **args)

    for cmd in (8, 15, 10, 0x402):                       # F_SETOWN(_EX), F_SETSIG, F_NOTIFY
        assert run("fcntl", arg1=cmd) == eperm
    assert run("fcntl", arg1=1) == allow and run("fcntl", arg1=4) == allow   # F_GETFD, F_SETFL
    assert run("ioctl", arg1=0x8901) == eperm and run("ioctl", arg1=0x5401) == allow
    assert run("sched_setaffinity", arg0=0) == allow and run("sched_setaffinity", arg0=1) == eperm
    assert run("setpriority", arg1=4242) == allow and run("setpriority", arg1=1) == eperm
    assert run("prlimit64", arg0=0, arg2=0) == allow                 # getrlimit()
    assert run("prlimit64", arg0=0, arg2=0x7FFF_0000_1000) == eperm  # setrlimit()
    assert run("prlimit64", arg0=1, arg2=0) == eperm                 # another process
