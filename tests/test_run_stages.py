"""``train_stage: pretrain_finetune``: one command, each stage with its own log file, its own
record section and its own line in the summary; no stage's lines reach another's log or the
console twice."""
import json
import os

from recbole_croloss.quick_start import main


def test_each_stage_has_its_own_log_record_section_and_summary_line(tiny, tmp_path, capsys):
    record_file = tmp_path / "run.json"
    settings = {**{k: v for k, v in tiny.items() if k != "state"}, "embedding_size": 16}
    args = [f"--{k}={v}" for k, v in settings.items()]
    assert main(["--model=TiMiRec", "--train_stage=pretrain_finetune", *args, f"--record={record_file}"]) == 0
    captured = capsys.readouterr()
    record = json.loads(record_file.read_text())
    pretrain = record["stages"]["pretrain"]

    for key in ("test_result", "best_valid_result", "best_epoch", "stopped", "history", "files", "steps_run"):
        assert pretrain[key] is not None, key
    assert pretrain["epochs_run"] == 1 and len(pretrain["history"]) == 1 and pretrain["test_result"]
    assert pretrain["settings"] == {"train_stage": "pretrain", "pre_model_path": None}
    assert "config" not in pretrain and record["config"]["pre_model_path"] == pretrain["files"]["model"]

    logs = {"pretrain": pretrain["files"]["log"], "finetune": record["files"]["log"]}
    assert logs["pretrain"] != logs["finetune"] and all(os.path.isfile(p) for p in logs.values())
    for stage, other in (("pretrain", "finetune"), ("finetune", "pretrain")):
        text = open(logs[stage]).read()
        assert f"train_stage = {stage}" in text and f"train_stage = {other}" not in text
        assert text.count("epoch 0 training") == 1

    err = captured.err.splitlines()
    for stage in ("pretrain", "finetune"):
        assert sum(line.startswith(f"TiMiRec (train_stage {stage}) on ml-100k") for line in err) == 1
    assert sum(line.startswith("epoch 0 done (1/1)") for line in err) == 2  # once a stage, never twice

    out = captured.out.splitlines()
    for stage, section in (("pretrain", pretrain), ("finetune", record)):
        line = next(line for line in out if line.startswith(f"stage {stage}: "))
        assert f"1 epoch ({section['stopped']}), best at epoch 0; test recall@50 " in line
        assert line.endswith(f"model {os.path.abspath(section['files']['model'])}")
