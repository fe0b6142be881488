import errno
import getpass

from pipeline.core.errors import ADVICE, PipelineError, SnapshotError, os_error_message


def test_a_permission_error_names_the_path_and_the_user():
    exc = PermissionError(errno.EACCES, "Permission denied", "/srv/shop/data/raw/transactions.csv")
    assert os_error_message(exc) == (
        f"/srv/shop/data/raw/transactions.csv: permission denied for user {getpass.getuser()}: give this "
        "user access to it (chmod/chown), or run the stage on a copy the user owns"
    )


def test_a_temporary_sibling_is_reported_as_the_output_it_stands_for():
    exc = OSError(errno.ENOSPC, "No space left on device", "data/scores/.churn_scores_2026-W47.csv.tmp-4242")
    assert os_error_message(exc) == (
        "data/scores/churn_scores_2026-W47.csv (written in data/scores): " + ADVICE[errno.ENOSPC]
    )


def test_a_rename_names_both_paths():
    exc = OSError(errno.EROFS, "Read-only file system", "a.csv", None, "b.csv")
    assert os_error_message(exc) == "a.csv -> b.csv: " + ADVICE[errno.EROFS]


def test_programming_errors_and_unlisted_os_errors_keep_their_traceback():
    assert os_error_message(KeyError("score_date")) is None
    assert os_error_message(OSError(errno.EINVAL, "Invalid argument", "x")) is None
    assert os_error_message(ValueError("bad")) is None


def test_a_duckdb_io_error_is_read_for_the_os_words_and_the_quoted_path():
    class IOException(Exception):
        pass

    IOException.__module__ = "duckdb.duckdb"
    exc = IOException('IO Error: Cannot open file "data/validated/transactions.parquet": Permission denied')
    assert os_error_message(exc) == (
        "data/validated/transactions.parquet: " + ADVICE[errno.EACCES].format(user=getpass.getuser())
    )
    assert os_error_message(IOException("IO Error: something else")) is None


def test_every_expected_failure_is_a_pipeline_error():
    assert issubclass(SnapshotError, PipelineError)
