"""import_papers and papers_ingest: one paper per paper across pages, sources and days; bad files keep nothing."""

import datetime
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from digest.models import Paper, TrendingEntry
from digest.services import editions
from digest.services.ingest import papers_ingest
from digest.signals import papers_changed
from digest.sources import PaperRecord

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
DEMO_PAGES = sorted(str(p) for p in (ROOT / "demo").glob("*.txt"))
MAR_12 = str(ROOT / "demo" / "trending-page-mar-12.txt")
DATA = Path(__file__).parent / "data"
HF = str(DATA / "hf_daily_papers_2024-03-12.json")
ARXIV = str(DATA / "arxiv_query.atom.xml")
FEMTODET = "FemtoDet: An Object Detection Baseline for Energy Versus Performance Tradeoffs"


def import_papers(*args):
    out, err = StringIO(), StringIO()
    call_command("import_papers", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_three_demo_pages_hold_242_distinct_papers_and_a_second_import_adds_none():
    out, _ = import_papers(*DEMO_PAGES, "--date", "2024-12-31")
    assert Paper.objects.count() == 242
    assert TrendingEntry.objects.count() == 270  # 28 papers trend on two of the days
    assert "total: 242 new, 0 updated, 28 unchanged" in out
    assert "trending-page-mar-12.txt: 87 papers:" in out

    out, _ = import_papers(*DEMO_PAGES, "--date", "2024-12-31")
    assert "total: 0 new, 0 updated, 270 unchanged" in out
    assert Paper.objects.count() == 242
    assert TrendingEntry.objects.count() == 270


def test_a_paper_on_several_pages_is_one_paper_with_one_entry_per_day():
    import_papers(*DEMO_PAGES, "--date", "2024-12-31")
    paper = Paper.objects.get(title="ReMax: A Simple, Effective, and Efficient Reinforcement Learning Method for Aligning Large Language Models")
    assert list(paper.trending.order_by("date").values_list("date", "rank", "source")) == [
        (datetime.date(2024, 3, 12), 29, "trending-page"),
        (datetime.date(2024, 4, 3), 42, "trending-page"),
        (datetime.date(2024, 4, 24), 10, "trending-page"),
    ]


def test_reimporting_the_same_file_changes_nothing():
    import_papers(HF)
    before = {p.pk: (p.updated_at, p.title, p.upvotes) for p in Paper.objects.all()}
    entries_before = list(TrendingEntry.objects.values_list("paper_id", "date", "rank", "upvotes", "source"))
    out, _ = import_papers(HF)
    assert "0 new, 0 updated, 4 unchanged" in out
    assert {p.pk: (p.updated_at, p.title, p.upvotes) for p in Paper.objects.all()} == before
    assert list(TrendingEntry.objects.values_list("paper_id", "date", "rank", "upvotes", "source")) == entries_before


def test_an_hf_day_trends_in_upvote_order_not_the_order_of_the_file():
    import_papers(HF)
    ranks = editions.day_trending_ranks(day=datetime.date(2024, 3, 12))
    by_rank = sorted(ranks, key=ranks.get)
    assert [Paper.objects.get(pk=pk).arxiv_id for pk in by_rank] == ["2312.04005", "2301.06719", "2403.07815", "2403.06504"]


def test_known_papers_trending_on_a_new_day_are_counted_in_the_summary():
    """Nothing new or changed in the papers, yet the day's digest gains four: the summary says so."""
    import_papers(HF)
    out, _ = import_papers("--date", "2024-03-20", HF)
    assert "0 new, 0 updated, 4 unchanged; 4 known trending on a new day" in out
    out, _ = import_papers("--date", "2024-03-20", HF)
    assert out.splitlines()[0].endswith("0 new, 0 updated, 4 unchanged")


def test_the_same_paper_from_a_page_hf_and_arxiv_is_one_paper():
    import_papers(MAR_12, "--date", "2024-03-12")
    import_papers(HF)
    import_papers(ARXIV)
    paper = Paper.objects.get(arxiv_id="2301.06719")
    assert Paper.objects.filter(fingerprint=paper.fingerprint).count() == 1
    sources = sorted(paper.trending.values_list("source", "date"))
    assert sources == [
        ("arxiv", datetime.date(2023, 1, 17)),
        ("hf", datetime.date(2024, 3, 12)),
        ("trending-page", datetime.date(2024, 3, 12)),
    ]
    # HF (same day as the page, imported later) brought ids, votes and links; arXiv
    # is dated by its 2023 publication so it only filled what was still empty.
    assert paper.title == "FemtoDet - an Object Detection Baseline for Energy versus Performance Tradeoffs"
    assert paper.upvotes == 14
    assert paper.code_url == "https://github.com/yh-pengtu/FemtoDet"
    assert paper.categories == ["cs.CV", "cs.AI"]
    assert paper.authors[0] == "Peng Tu"
    assert paper.pdf_url == "https://arxiv.org/pdf/2301.06719"


def test_the_newest_day_wins_and_older_records_only_fill_gaps():
    def record(day, **changes):
        values = dict(
            title="Sparse Cats", abstract="An abstract.", trending_date=day, rank=1, source="hf", arxiv_id="2401.00001"
        )
        return PaperRecord(**(values | changes))

    papers_ingest(records=[record(datetime.date(2024, 3, 10), upvotes=3)])
    result = papers_ingest(records=[record(datetime.date(2024, 3, 12), title="Sparse cats!", upvotes=9, abstract="v2.")])
    assert (result.new, result.updated) == (0, 1)
    result = papers_ingest(
        records=[record(datetime.date(2024, 3, 11), title="SPARSE CATS", upvotes=5, abstract="v1.", code_url="https://github.com/c/s")]
    )
    paper = Paper.objects.get()
    assert (paper.title, paper.abstract, paper.upvotes) == ("Sparse cats!", "v2.", 9)
    assert paper.code_url == "https://github.com/c/s"
    assert (result.new, result.updated) == (0, 1)
    assert paper.trending.count() == 3


def test_an_arxiv_id_in_any_version_or_a_new_title_matches_the_same_paper():
    day = datetime.date(2024, 3, 12)
    papers_ingest(records=[PaperRecord(title="Old Title", abstract="A.", trending_date=day, rank=1, source="hf", arxiv_id="2401.00001")])
    papers_ingest(
        records=[PaperRecord(title="Renamed Title", abstract="A.", trending_date=day, rank=1, source="arxiv", arxiv_id="2401.00001")]
    )
    paper = Paper.objects.get()
    assert paper.title == "Renamed Title"
    assert paper.fingerprint == "renamed title"


def test_a_bad_file_is_reported_and_kept_out_while_good_files_import(tmp_path):
    truncated = tmp_path / "truncated.txt"
    text = Path(MAR_12).read_bytes()
    truncated.write_bytes(text[: text.index(b"Data-Centric Human Preference") + 20])
    binary = tmp_path / "binary.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="3 of 4 file"):
        call_command("import_papers", str(truncated), HF, str(binary), str(empty), stdout=out, stderr=err)
    errors = err.getvalue().splitlines()
    assert errors[0].startswith(f"{truncated}: line 355: title 'Data-Centric Human P' has no abstract (the file ends here: truncated?)")
    assert errors[1] == f"{binary}: line 3: binary data (a NUL byte), not a paper list"
    assert errors[2] == f"{empty}: line 1: empty file"
    # Nothing of the truncated page (whose first 86 papers were fine) was kept.
    assert Paper.objects.count() == 4
    assert set(TrendingEntry.objects.values_list("source", flat=True)) == {"hf"}
    assert "hf_daily_papers_2024-03-12.json: 4 papers: 4 new" in out.getvalue()


def test_the_exit_status_is_non_zero_when_a_file_fails(tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "missing.txt"
    result = subprocess.run(
        [sys.executable, "manage.py", "import_papers", str(missing)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    assert result.returncode == 1
    assert f"{missing}: cannot read" in result.stderr


def test_a_forced_format_that_does_not_fit_is_refused(tmp_path):
    with pytest.raises(CommandError):
        _, err = import_papers(HF, "--format", "trending-page")
    with pytest.raises(CommandError):
        import_papers(MAR_12, "--format", "hf-json")
    assert Paper.objects.count() == 0


def test_a_failure_in_the_middle_of_a_file_keeps_nothing_of_it(tmp_path):
    items = json.loads(Path(HF).read_text())
    items[3]["paper"]["upvotes"] = "many"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(items))
    with pytest.raises(CommandError):
        _, err = import_papers(str(bad))
    assert Paper.objects.count() == 0


def test_changed_papers_are_announced_after_commit(django_capture_on_commit_callbacks):
    received = []

    def listener(sender, paper_ids, **kwargs):
        received.append(sorted(paper_ids))

    papers_changed.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            import_papers(HF)
        assert received == [sorted(Paper.objects.values_list("pk", flat=True))]
        with django_capture_on_commit_callbacks(execute=True):
            import_papers(HF)
        # Nothing changed, nothing announced (the only callback left checks the day's frozen edition).
        assert len(received) == 1
    finally:
        papers_changed.disconnect(listener)


def test_the_number_of_queries_does_not_grow_with_the_number_of_papers():
    def records(n, offset):
        day = datetime.date(2024, 3, 12)
        return [
            PaperRecord(title=f"Paper {offset + i}", abstract="A.", trending_date=day, rank=i + 1, source="hf", arxiv_id=f"2403.{offset + i:05d}")
            for i in range(n)
        ]

    counts = []
    for n, offset in ((10, 0), (500, 1000)):
        with CaptureQueriesContext(connection) as queries:
            papers_ingest(records=records(n, offset))
        counts.append(len([q for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]))
    # Lookups, one insert of papers, one of appearances: the same for 10 papers as for 500.
    assert counts[0] == counts[1] <= 5
    assert Paper.objects.count() == 510


@pytest.mark.parametrize(
    "command",
    [["import_papers", MAR_12], ["fetch_papers", "--source", "hf"], ["send_digests"],
     ["preview_digest", "--email", "ada@example.org"]],
)
def test_a_bad_date_is_a_one_line_usage_error_not_a_traceback(command, tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "manage.py", *command, "--date", "garbage"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "error: argument --date: 'garbage' is not a date like 2024-03-12" in result.stderr


def test_the_demo_load_of_make_run_queues_nothing_before_redis_is_up(tmp_path):
    """`make run` imports the demo before honcho starts Redis: queueing would only warn, three times."""
    import re
    import subprocess
    import sys

    recipe = (ROOT / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    demo_load = [line.strip().replace("$(PY)", sys.executable) for line in recipe.splitlines()
                 if re.search(r"manage\.py (migrate|import_papers|classify_papers)", line)]
    assert [line.split()[2] for line in demo_load] == ["migrate", "import_papers", "classify_papers"]
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "REDIS_URL": "redis://127.0.0.1:1/0", "MATCHING_METHOD": "lexical"}
    for line in demo_load:
        result = subprocess.run(line, shell=True, cwd=ROOT, capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
        assert "could not enqueue" not in result.stderr
    assert "classified 242 papers" in result.stdout


@pytest.mark.parametrize("path", [MAR_12, HF, DATA / "arxiv_query.atom.xml"])
def test_a_file_saved_as_utf16_with_a_byte_order_mark_imports_like_its_utf8_original(path, tmp_path):
    """What Windows tools call 'Unicode' text: it was refused as 'binary data (a NUL byte)'."""
    from digest.sources import parse_papers

    original = Path(path).read_bytes()
    wide = tmp_path / Path(path).name
    text = original.decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"')  # as an XML tool saves it
    wide.write_bytes(text.encode("utf-16"))  # with a BOM
    assert parse_papers(wide.read_bytes(), name=wide.name) == parse_papers(original, name=Path(path).name)
