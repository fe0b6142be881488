"""The decoded-content search the privacy tests rely on: it must find an id in every kind of file
the pipeline and MLflow write, where a search of raw bytes does not."""

from tests.content import ids_in, plant, raw_ids_in

PLANTED = "000600"  # neither the smallest nor the largest: Parquet's statistics show those plainly
OTHERS = [f"{i:06d}" for i in range(1, 1200) if i != 600]


def test_the_search_finds_a_planted_id_in_every_kind_of_file_and_only_that_one(tmp_path):
    files = plant(tmp_path, PLANTED, OTHERS)
    assert sorted(files) == ["csv", "gzip", "json", "model text", "parquet", "pickle", "sqlite", "zip"]
    found = {kind: ids_in(path, {PLANTED, "001200"}) for kind, path in files.items()}
    assert found == {kind: {PLANTED} for kind in files}
    # what a grep of the bytes sees: nothing inside compressed Parquet, gzip, zip and pickles, nor
    # an SQLite text cell that its record packs against the cell before it
    blind = sorted(kind for kind, path in files.items() if not raw_ids_in(path, {PLANTED}))
    assert blind == ["gzip", "parquet", "pickle", "sqlite", "zip"]


def test_an_id_is_a_whole_token_not_digits_inside_a_number(tmp_path):
    text = tmp_path / "metrics.json"
    text.write_text('{"ece": 0.000123, "rows": 1000123, "key": "000123x", "ids": ["000124"]}')
    assert ids_in(text, {"000123", "000124"}) == {"000124"}
