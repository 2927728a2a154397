"""What every benchmark prints first: the CPU, its cores and the vector features that pick
Quill's kernels (and the peers')."""
import os, re

FEATURES = ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile"]

def cpu_features():
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return f"{os.cpu_count()} cores (no /proc/cpuinfo)"
    flags = set((re.search(r"^flags\s*:(.*)$", text, re.M) or re.search(r"^Features\s*:(.*)$", text, re.M)).group(1).split())
    name = re.search(r"^model name\s*:(.*)$", text, re.M)
    return f"{name.group(1).strip() if name else 'CPU'}; {os.cpu_count()} cores; {' '.join(f for f in FEATURES if f in flags)}"
