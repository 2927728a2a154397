"""What every benchmark shares: the CPU line it prints first (cores and the vector features that
pick Quill's kernels and the peers'), and running a command while measuring the peak memory of
it and all its child processes together."""
import os, re, subprocess, threading, time

FEATURES = ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile"]

def cpu_features():
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return f"{os.cpu_count()} cores (no /proc/cpuinfo)"
    flags = set((re.search(r"^flags\s*:(.*)$", text, re.M) or re.search(r"^Features\s*:(.*)$", text, re.M)).group(1).split())
    name = re.search(r"^model name\s*:(.*)$", text, re.M)
    return f"{name.group(1).strip() if name else 'CPU'}; {os.cpu_count()} cores; {' '.join(f for f in FEATURES if f in flags)}"


def _tree_rss(root):
    """Resident bytes of `root` and every process below it, from /proc."""
    children, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()   # after the command name, which may hold spaces
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


def run_measured(cmd, interval=0.05, **kw):
    """Runs `cmd` (subprocess.run's keywords) and returns (seconds, peak bytes, completed process),
    where the peak is the largest sum of resident memory over the process and all its descendants
    (worker processes count together, as they occupy the machine together), sampled every
    `interval` seconds."""
    peak, done = [0], threading.Event()
    start = time.perf_counter()
    process = subprocess.Popen(cmd, **kw)

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(process.pid))
            done.wait(interval)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, cmd, out, err)
    return seconds, peak[0], subprocess.CompletedProcess(cmd, process.returncode, out, err)
