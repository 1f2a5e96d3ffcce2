"""`bertforge predict` on an exported int8 model, end to end, against transformers' pipeline.

Both sides are a fresh process that starts, imports what it needs, opens the model, reads a
file of questions (TREC-6, one a line), predicts every one and writes JSONL: what a user
who labels a file waits for. bertforge runs ``python -m bertforge predict`` on the int8
export of a MiniLM classifier fine-tuned by ``bench_predict_cpu.py`` (or ``--model``); the
pipeline runs ``pipeline("text-classification")`` on the same fine-tuned folder, with
``batch_size=32`` (``--pipeline-default`` adds the default, one text at a time). Runs are
interleaved, ``--repeats`` rounds; the median wall time of each is reported. One text alone
(``--text``) is timed too: start-up and loading, nothing else.

With ``--before-src`` the same command also runs from another source tree, e.g. the last
commit's, side by side:

    git archive HEAD src | tar -x -C /tmp/before
    python benchmarks/bench_predict_command.py --work-dir runs/predict-bench --before-src /tmp/before/src
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict_cpu import DATA, exported, fine_tuned, read_split  # noqa: E402

# The peer, end to end as a user would write it: read lines, classify, write JSONL.
PIPELINE = """
import json, sys
from transformers import pipeline
model, source, output, batch_size, length = sys.argv[1:6]
texts = open(source, encoding="utf-8").read().splitlines()
classify = pipeline("text-classification", model=model, tokenizer=model, device=-1)
options = {"truncation": True, "max_length": int(length)}
if int(batch_size):
    options["batch_size"] = int(batch_size)
with open(output, "w", encoding="utf-8") as handle:
    for text, row in zip(texts, classify(texts, **options)):
        handle.write(json.dumps({"text": text, "label": row["label"], "score": row["score"]}) + "\\n")
"""


def wall_seconds(command: list[str], source: str | None = None) -> float:
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = source + os.pathsep + env.get("PYTHONPATH", "")
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} ... failed: {done.stderr[-2000:]}")
    return elapsed


def labels(path: Path) -> list[str]:
    return [json.loads(line)["label"] for line in path.read_text(encoding="utf-8").splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", required=True, help="fine-tuned and exported models are kept here")
    parser.add_argument("--model", help="a bertforge TREC classifier (default: fine-tune one)")
    parser.add_argument("--texts", type=int, default=5000, help="questions to label (from TREC's train file)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pipeline-batch-size", type=int, default=32)
    parser.add_argument("--pipeline-default", action="store_true", help="also the pipeline one text at a time")
    parser.add_argument("--before-src", help="another bertforge source tree to run `bertforge predict` from")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)

    texts, _ = read_split("trec", "train")
    texts = texts[:args.texts]
    source = work / f"trec-{len(texts)}.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    model = fine_tuned("trec", args.model, work)
    int8 = exported(model, True, DATA / "trec" / "test.csv")
    length = json.loads((model / "bertforge.json").read_text())["max_seq_length"]

    def ours(tree: str | None, name: str):
        out = work / f"{name}.jsonl"
        return out, lambda: wall_seconds([sys.executable, "-m", "bertforge", "predict", "--model", str(int8),
                                          str(source), "--output", str(out), "--quiet"], tree)

    def theirs(batch_size: int, name: str):
        out = work / f"{name}.jsonl"
        return out, lambda: wall_seconds([sys.executable, "-c", PIPELINE, str(model), str(source), str(out),
                                          str(batch_size), str(length)])

    def one_text(tree: str | None):
        return None, lambda: wall_seconds([sys.executable, "-m", "bertforge", "predict", "--model", str(int8),
                                           "--text", "Who wrote The Raven ?"], tree)

    batched = f"transformers pipeline, batch_size={args.pipeline_batch_size}"
    paths = {batched: theirs(args.pipeline_batch_size, "pipeline-batched")}
    if args.pipeline_default:
        paths["transformers pipeline, default"] = theirs(0, "pipeline-default")
    paths["bertforge predict, ONNX int8"] = ours(None, "bertforge")
    paths["bertforge predict, one text"] = one_text(None)
    if args.before_src:
        paths["bertforge predict, ONNX int8 (before)"] = ours(args.before_src, "bertforge-before")
        paths["bertforge predict, one text (before)"] = one_text(args.before_src)

    seconds: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(args.repeats):  # interleaved: drift on a shared machine hits every path alike
        for name, (_, run) in paths.items():
            seconds[name].append(run())
            print(f"round {round_ + 1}: {name:44} {seconds[name][-1]:7.2f} s", flush=True)

    reference = labels(paths[batched][0])
    base = statistics.median(seconds[batched])
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               "texts": len(texts), "repeats": args.repeats, "paths": {}}
    print(f"\n{len(texts)} TREC questions, end to end, median of {args.repeats} interleaved runs")
    for name, (out, _) in paths.items():
        median = statistics.median(seconds[name])
        row = {"seconds": round(median, 2), "runs": [round(s, 2) for s in seconds[name]]}
        if out is not None:
            predicted = labels(out)
            row["examples_per_second"] = round(len(texts) / median, 1)
            row["vs_pipeline_batched"] = round(base / median, 2)
            row["same_label_as_pipeline"] = round(sum(a == b for a, b in zip(predicted, reference)) / len(texts), 4)
            print(f"{name:44} {median:7.2f} s  {row['examples_per_second']:7.1f} ex/s  "
                  f"{row['vs_pipeline_batched']:5.2f}x the batched pipeline  "
                  f"same label {row['same_label_as_pipeline']:.4f}")
        else:
            print(f"{name:44} {median:7.2f} s")
        results["paths"][name] = row
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
