#!/usr/bin/env python3
"""The tensor types llama-quantize chooses for each file type, on the real models: the oracle for
Quill's per-tensor mix rules (`GGUFQuantizationPlan`).

    Benchmarks/build_llama_cpp.sh && QUILL_MODELS=all scripts/setup
    python3 Tests/QuillFormatsTests/Fixtures/make_quantization_plans.py

Runs `llama-quantize --dry-run --allow-requantize MODEL out TYPE` (nothing is written) and records
every tensor's name, in llama-quantize's order (the same for every type), and the type each
would get, into quantization-plans.json as
{model file: {"tensors": "name name ...", "types": {TYPE: "type type ..."}}}; TYPE+imatrix for
the types whose mix changes with an importance matrix (its values do not matter to the types:
a one-entry matrix written by gguf-py).
"""
import json, os, re, subprocess, tempfile
import numpy as np

CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))
BIN = os.path.join(os.environ.get("LLAMA_CPP_BUILD", os.path.join(CACHE, "llama.cpp-build")), "bin")
MODELS = ["SmolLM2-135M-Instruct.Q4_1.gguf", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "gemma-3-270m-q4_k_m.gguf"]
TYPES = ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q2_K_S", "Q3_K_S", "Q3_K_M", "Q3_K_L",
         "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K"]
WITH_IMATRIX = ["Q4_0", "Q5_0", "Q4_K_M"]
LINE = re.compile(r"^\[\s*\d+/\s*\d+\]\s+(\S+)\s+- \[.*\], type =\s+(\w+), size = .*?(?:\((\w+)\))?$")


def one_entry_imatrix():
    import gguf
    path = os.path.join(tempfile.mkdtemp(), "imatrix.gguf")
    writer = gguf.GGUFWriter(path, arch="")
    writer.add_type("imatrix")
    writer.add_array("imatrix.datasets", ["none"])
    writer.add_uint32("imatrix.chunk_count", 1)
    writer.add_uint32("imatrix.chunk_size", 512)
    writer.add_tensor("blk.0.attn_q.weight.in_sum2", np.ones((1, 576), dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight.counts", np.full((1, 1), 512, dtype=np.float32))
    writer.write_header_to_file(); writer.write_kv_data_to_file(); writer.write_tensors_to_file(); writer.close()
    return path


def main():
    plans = {}
    imatrix = one_entry_imatrix()
    for model in MODELS:
        plans[model] = {"types": {}}
        for ftype in TYPES + [t + "+imatrix" for t in WITH_IMATRIX]:
            base = ftype.split("+")[0]
            extra = ["--imatrix", imatrix] if ftype.endswith("+imatrix") else []
            out = subprocess.run([os.path.join(BIN, "llama-quantize"), "--dry-run", "--allow-requantize", *extra,
                                  os.path.join(CACHE, "models", model), "/tmp/unused.gguf", base, "2"],
                                 capture_output=True, text=True, check=True)
            rows = []
            for line in (out.stdout + out.stderr).splitlines():
                m = LINE.match(line.strip())
                if m:
                    rows.append([m.group(1), (m.group(3) or m.group(2)).upper()])
            assert rows, out.stderr[-2000:]
            names = " ".join(r[0] for r in rows)
            assert plans[model].setdefault("tensors", names) == names, f"{model} {ftype}: another tensor order"
            plans[model]["types"][ftype] = " ".join(r[1] for r in rows)
        print(f"{model}: {len(rows)} tensors, {len(TYPES)} types")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "quantization-plans.json")
    with open(path, "w") as f:
        json.dump(plans, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
