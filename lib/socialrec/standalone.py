"""A Spark standalone cluster on this machine: one master and one worker, started with
the pyspark installation's own daemon script (``sbin/spark-daemon.sh``, what
``start-master.sh`` / ``start-worker.sh`` call), bound to loopback, with their logs,
pid files and executor work folders under one directory.

It is the smallest setup in which executors are separate processes from the driver:
a job submitted to it must pickle its closures, must not rely on driver-only state
and loads its models inside the executors. The test suite submits the pipeline to one
(tests/test_cluster.py); users can try spark-submit the same way before a real cluster:

    python -m socialrec.standalone start --dir /tmp/sr-cluster     # prints the master URL
    spark-submit --master spark://127.0.0.1:PORT ... jobs/pipeline.py ...
    python -m socialrec.standalone stop --dir /tmp/sr-cluster

Nothing here runs on import.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"
HOST = "127.0.0.1"


class ClusterError(RuntimeError):
    """The cluster did not come up (the message names the log to read)."""


def spark_home() -> Path:
    """The pyspark installation (it carries bin/ and sbin/ like a Spark distribution)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    directory: str
    master_url: str
    master_ui: str
    cores: int
    memory: str
    ident: str

    def env(self) -> dict[str, str]:
        return daemon_env(Path(self.directory), self.ident)

    def state(self) -> dict:
        """The master's JSON status (workers, running and completed applications)."""
        with urllib.request.urlopen(f"{self.master_ui}/json/", timeout=5) as r:
            return json.load(r)

    def pids(self) -> list[int]:
        out = []
        for f in Path(self.directory, "pids").glob("*.pid"):
            try:
                out.append(int(f.read_text().strip()))
            except ValueError:
                continue
        return out


def daemon_env(directory: Path, ident: str) -> dict[str, str]:
    """Environment for spark-daemon.sh: its own conf (none), logs, pids and work dirs,
    loopback only."""
    conf = directory / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    # Nothing of the caller's Python path or Spark settings leaks into the daemons (and from
    # them into executors): jobs must bring their code themselves (--py-files).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_", "PYTHONPATH"))}
    env.update({
        "SPARK_HOME": str(spark_home()),
        "SPARK_CONF_DIR": str(conf),
        "SPARK_LOG_DIR": str(directory / "logs"),
        "SPARK_PID_DIR": str(directory / "pids"),
        "SPARK_WORKER_DIR": str(directory / "work"),
        "SPARK_IDENT_STRING": ident,
        "SPARK_LOCAL_IP": HOST,
    })
    return env


def _daemon(env: dict[str, str], action: str, cls: str, *args: str) -> None:
    script = spark_home() / "sbin" / "spark-daemon.sh"
    proc = subprocess.run(["bash", str(script), action, cls, "1", *args], env=env, capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        raise ClusterError(f"spark-daemon.sh {action} {cls.rsplit('.', 1)[-1]} failed: "
                           f"{(proc.stdout + proc.stderr).strip()[-500:]}")


def _logs(directory: Path) -> str:
    return ", ".join(str(p) for p in sorted((directory / "logs").glob("*.out"))) or str(directory / "logs")


def start(directory: str | Path, *, cores: int = 2, memory: str = "4g", timeout: float = 90.0) -> Cluster:
    """Start a master and one worker (``cores``, ``memory`` for its executors) and wait
    until the worker has registered. Raises ClusterError (and stops what it started)
    when it does not within ``timeout`` seconds."""
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    port, ui, worker_ui = free_port(), free_port(), free_port()
    cluster = Cluster(directory=str(directory), master_url=f"spark://{HOST}:{port}",
                      master_ui=f"http://{HOST}:{ui}", cores=cores, memory=memory,
                      ident=f"socialrec-{port}")
    env = cluster.env()
    (directory / "cluster.json").write_text(json.dumps(asdict(cluster), indent=2), encoding="utf-8")
    try:
        _daemon(env, "start", MASTER, "--host", HOST, "--port", str(port), "--webui-port", str(ui))
        _daemon(env, "start", WORKER, "--host", HOST, "--webui-port", str(worker_ui), "--cores", str(cores),
                "--memory", memory, "--work-dir", str(directory / "work"), cluster.master_url)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if cluster.state().get("aliveworkers", 0) >= 1:
                    return cluster
            except OSError:
                pass  # the master's UI is not listening yet
            if time.monotonic() > deadline:
                raise ClusterError(f"no worker registered with {cluster.master_url} within {timeout:.0f} s; "
                                   f"see {_logs(directory)}")
            time.sleep(0.5)
    except BaseException:
        stop(cluster)
        raise


def stop(cluster: Cluster, timeout: float = 30.0) -> None:
    """Stop the worker (and with it its executors) and the master; kill what is left."""
    env = cluster.env()
    pids = cluster.pids()  # before spark-daemon.sh removes the pid files
    for cls in (WORKER, MASTER):
        try:
            _daemon(env, "stop", cls)
        except (ClusterError, subprocess.TimeoutExpired):
            pass
    deadline = time.monotonic() + timeout
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@contextmanager
def local_cluster(directory: str | Path, *, cores: int = 2, memory: str = "4g"):
    """``with local_cluster(d) as c: ...`` starts a cluster and always stops it."""
    cluster = start(directory, cores=cores, memory=memory)
    try:
        yield cluster
    finally:
        stop(cluster)


def load(directory: str | Path) -> Cluster:
    path = Path(directory).resolve() / "cluster.json"
    if not path.exists():
        raise ClusterError(f"no cluster recorded in {path}")
    return Cluster(**json.loads(path.read_text(encoding="utf-8")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m socialrec.standalone", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--dir", default="./standalone-cluster", help="logs, pids and work folders (default %(default)s)")
    parser.add_argument("--cores", type=int, default=2, help="the worker's cores (default %(default)s)")
    parser.add_argument("--memory", default="4g", help="the worker's memory for executors (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            c = start(args.dir, cores=args.cores, memory=args.memory)
            print(f"master {c.master_url} (UI {c.master_ui}); one worker with {c.cores} cores, {c.memory}")
        elif args.command == "stop":
            stop(load(args.dir))
            print("stopped")
        else:
            s = load(args.dir).state()
            print(json.dumps({k: s.get(k) for k in ("url", "status", "aliveworkers", "cores", "coresused",
                                                    "activeapps", "completedapps")}, indent=2, default=str))
    except (ClusterError, OSError) as exc:
        print(f"standalone: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
