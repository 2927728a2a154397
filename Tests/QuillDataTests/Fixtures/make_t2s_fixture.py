#!/usr/bin/env python3
"""Traditional → Simplified Chinese reference: OpenCC's own `opencc -c t2s.json` on real text.

    apt-get install opencc debian-reference-zh-tw   (or: apt-get download + dpkg -x)
    python3 Tests/QuillDataTests/Fixtures/make_t2s_fixture.py [debian-reference.zh-tw.txt.gz]

Input: 600 lines of Debian Reference in Traditional Chinese (zh-tw) that hold Han characters,
plus one sentence per entry of OpenCC's TSPhrases dictionary (every phrase embedded between
characters that also convert), so both the phrase and the character tables are exercised.
Writes t2s-input.txt and t2s-opencc.txt next to this script.
"""
import gzip, os, subprocess, sys, tempfile

here = os.path.dirname(os.path.abspath(__file__))
source = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/debian-reference/debian-reference.zh-tw.txt.gz"
lines = [l.strip() for l in gzip.open(source, "rt", encoding="utf-8")]
han = [l for l in lines if sum("\u4e00" <= c <= "\u9fff" for c in l) >= 8]
picked = han[::max(1, len(han) // 600)][:600]

with tempfile.TemporaryDirectory() as tmp:
    text_dict = os.path.join(tmp, "TSPhrases.txt")
    subprocess.run(["opencc_dict", "-i", "/usr/share/opencc/TSPhrases.ocd2", "-o", text_dict, "-f", "ocd2", "-t", "text"], check=True)
    phrases = [l.split("\t")[0] for l in open(text_dict, encoding="utf-8") if "\t" in l]
picked += [f"這個{p}的說明與討論，請參閱{p}。" for p in phrases]

text = "\n".join(picked) + "\n"
with open(os.path.join(here, "t2s-input.txt"), "w", encoding="utf-8") as f:
    f.write(text)
converted = subprocess.run(["opencc", "-c", "t2s.json"], input=text, capture_output=True, text=True, check=True).stdout
with open(os.path.join(here, "t2s-opencc.txt"), "w", encoding="utf-8") as f:
    f.write(converted)
changed = sum(a != b for a, b in zip(text.splitlines(), converted.splitlines()))
print(f"{len(picked)} lines, {changed} changed by OpenCC, {len(text.encode())} bytes")
