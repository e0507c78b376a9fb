"""CPU accounting of a served process tree (bench/serve.py's columns), on a real child process."""

import subprocess
import sys

from service.process import tree_cpu_seconds, tree_main_thread_cpu_seconds

BURN = """
import sys, threading, time
def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
worker = threading.Thread(target=burn, args=(0.6,))
worker.start()
burn(0.3)
worker.join()
print("done", flush=True)
time.sleep(60)
"""


def test_main_thread_cpu_is_the_main_threads_share_of_the_tree():
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BURN!r}])"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "done"
        whole, main = tree_cpu_seconds(parent.pid), tree_main_thread_cpu_seconds(parent.pid)
        assert whole >= 0.85  # both threads of the grandchild, found through the tree
        assert 0.25 <= main <= whole - 0.5  # its main thread's 0.3 s, not the worker thread's 0.6 s
    finally:
        subprocess.run(["pkill", "-P", str(parent.pid)], check=False)
        parent.kill()
        parent.wait()
