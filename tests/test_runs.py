import hashlib

from pipeline.core.runs import RunKind, params_digest, run_kind


def test_dvc_experiments_and_the_sandbox_switch_never_publish():
    assert run_kind({}) == RunKind(None) and run_kind({}).publishes
    assert run_kind({"DVC_EXP_NAME": "dozen-rand", "DVC_ROOT": "/p"}) == RunKind("dozen-rand")
    assert not run_kind({"DVC_EXP_NAME": "dozen-rand"}).publishes
    assert run_kind({"CHURN_SANDBOX": "1"}) == RunKind("sandbox")
    assert run_kind({"CHURN_SANDBOX": "0"}).publishes and run_kind({"CHURN_SANDBOX": ""}).publishes
    # DVC's name wins over the switch
    assert run_kind({"DVC_EXP_NAME": "x", "CHURN_SANDBOX": "1"}).label == "x"
    assert RunKind(None).label == "production"


def test_the_params_digest_is_the_head_of_the_files_sha256(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_bytes(b"train:\n  learning_rate: 0.1\n")
    assert params_digest(path) == hashlib.sha256(b"train:\n  learning_rate: 0.1\n").hexdigest()[:12]
