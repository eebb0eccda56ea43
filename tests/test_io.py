"""recbole_croloss.io: temporaries a dead writer left are removed by the next writer of the same
dataset; those of a writer still at work, and every other file, are kept."""
import os
import subprocess
import sys

import psutil

from recbole_croloss.io import AtomicOutputs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def abandoned_temporary(out, name, host=None):
    """The temporary file of a writer that ended without cleaning up (``os._exit``: no handler,
    no finally), written from another process; ``host`` poses as a writer on another machine."""
    code = ("import os; from recbole_croloss import io; "
            + (f"io.HOST = {host!r}; " if host else "")
            + f"o = io.AtomicOutputs({out!r}, {name!r}); o.open('inter', 'half').flush(); "
            "print(o.temps['inter'][0], flush=True); os._exit(0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_dead_writer_s_temporary_goes_and_other_files_stay(tmp_path):
    out = str(tmp_path)
    dead = abandoned_temporary(out, "d")
    elsewhere = abandoned_temporary(out, "d", host="another-machine")  # its pid means nothing here
    folder = os.path.dirname(dead)
    others = [".d.inter.tmp", "notes.tmp", "d.inter", ".e.inter.1.abcdefgh.tmp"]
    for name in others:
        with open(os.path.join(folder, name), "w") as fh:
            fh.write("keep\n")
    assert os.path.isfile(dead) and os.path.isfile(elsewhere)
    outputs = AtomicOutputs(out, "d")
    assert not os.path.exists(dead)
    assert sorted(os.listdir(folder)) == sorted([os.path.basename(elsewhere), *others])
    outputs.open("inter", "x\n")
    outputs.commit()
    assert open(os.path.join(folder, "d.inter")).read() == "x\n"


def test_a_live_writer_s_temporary_stays_unless_older_than_its_process(tmp_path):
    first = AtomicOutputs(str(tmp_path), "d")
    first.open("inter", "first\n").flush()
    temporary = first.temps["inter"][0]
    AtomicOutputs(str(tmp_path), "d")  # a second writer while the first one is at work
    assert os.path.isfile(temporary)
    first.commit()
    assert open(os.path.join(tmp_path, "d", "d.inter")).read() == "first\n"

    again = AtomicOutputs(str(tmp_path), "d")
    again.open("inter", "again\n").flush()
    temporary = again.temps["inter"][0]
    # a file older than the process that holds its pid now: the pid was reused, its writer is gone
    before = psutil.Process().create_time() - 60
    os.utime(temporary, (before, before))
    AtomicOutputs(str(tmp_path), "d")
    assert not os.path.exists(temporary)
