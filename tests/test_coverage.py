"""Coverage of a third party's list by private set intersection: two real processes over
127.0.0.1 (in a loopback-only network namespace), what each side learns, what crosses the wire,
the estimator, and every bad input (docs/coverage.md)."""

from __future__ import annotations

import hashlib
import json
import math
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coverage_psi.estimate import estimate, match_rate, release
from coverage_psi.keys import match_keys, normalise, register_keys, source_keys, source_match_keys
from coverage_psi.wire import read_transcript
from datasets.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
[coverage]
name = "cov"
[coverage.data]
register_size = 3000
[coverage.design]
clerical_sample = 400
"""


def _isolated(script: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a shell script in fresh network and PID namespaces with loopback only."""
    assert shutil.which("unshare") and shutil.which("ip"), "unshare and ip (util-linux, iproute2) are needed"
    return subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", "bash", "-c",
                           "ip link set lo up && cd " + shlex.quote(str(ROOT)) + " && " + script],
                          capture_output=True, text=True, timeout=timeout)


def _ppml(*args: str) -> str:
    return shlex.join([sys.executable, "-m", "simulation.cli", *args])


KEYS = ["no_surname", "no_first", "no_postcode", "birth_year"]
CONFIG_KEYS = CONFIG.replace("clerical_sample = 400", "clerical_sample = 0").replace(
    "register_size = 3000", "register_size = 3000\nkey_error_rate = 0.15") + \
    f'[coverage.protocol]\nmethod = "x25519"\nmatch_keys = {json.dumps(KEYS)}\n'


def _finished(tmp: Path, config: str) -> Path:
    (tmp / "cov.toml").write_text(config)
    left = ("import os; print('LEFT', sum(any(w in open(f'/proc/{p}/cmdline', 'rb').read() for w in "
            "(b'coverage\\0serve', b'coverage\\0measure')) for p in os.listdir('/proc') if p.isdigit()))")
    proc = _isolated(_ppml("coverage", "run", str(tmp / "cov.toml"), "--out", str(tmp / "run"))
                     + f"; {shlex.quote(sys.executable)} -c {shlex.quote(left)}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "LEFT 0" in proc.stdout  # both parties' processes were stopped
    return tmp / "run"


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return _finished(tmp_path_factory.mktemp("cov"), CONFIG)


@pytest.fixture(scope="module")
def finished_keys(tmp_path_factory) -> Path:
    return _finished(tmp_path_factory.mktemp("covkeys"), CONFIG_KEYS)


def test_two_processes_measure_the_coverage_over_tls_and_each_learns_only_its_share(finished):
    c = json.loads((finished / "summary.json").read_text())["coverage"]
    assert c["ci_low"] <= c["coverage"] <= c["ci_high"] and c["interval_holds_truth"]
    assert abs(c["coverage"] - c["true_coverage"]) < 0.03
    assert c["coverage_uncorrected"] < c["coverage"]  # key errors hide matches; the correction restores them
    assert c["bytes_nso_sent"] > 0 and c["bytes_third_party_sent"] > 0 and c["protocol_seconds"] > 0
    learned = json.loads((finished / "third_party" / "learned.json").read_text())
    assert learned["nso_keys"] == 3000 and set(learned["released"]) >= {"coverage", "ci_low", "ci_high"}
    assert learned["padded_to"] == 6000  # its own size stays hidden behind the agreed padding
    assert (finished / "certs").exists()  # TLS by default


def _secrets(records: pd.DataFrame, keys: list[str]) -> list[bytes]:
    """An identifier in every form a careless protocol might send: the key, its plain hashes, the
    national id."""
    out = []
    hashes = (hashlib.sha256, hashlib.sha1, hashlib.md5, hashlib.sha512)
    for k in keys:
        raw = k.encode()
        out += [raw] + [f(raw).digest() for f in hashes] + [f(raw).digest()[:32] for f in hashes] + \
               [f(raw).hexdigest().encode() for f in hashes]
    return out + [nid.encode() for nid in records["national_id"]]


def _lists(run: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (pd.read_csv(run / "nso" / "register.csv", dtype=str, keep_default_na=False),
            pd.read_csv(run / "third_party" / "source.csv", dtype=str, keep_default_na=False))


@pytest.mark.parametrize("run", ["finished", "finished_keys"])
def test_no_identifier_of_either_side_nor_its_plain_hash_crosses_the_wire(run, request):
    """Both protocols: OpenMined's ECDH on P-256 with the plain keys, DH on Curve25519 with every
    tagged match key (and the SHA-512 it hashes to the curve)."""
    finished = request.getfixturevalue(run)
    register, source = _lists(finished)
    sent_by_nso = b"".join(f for d, f in read_transcript(finished / "nso" / "transcript.bin") if d == "SENT")
    sent_by_third = b"".join(f for d, f in read_transcript(finished / "third_party" / "transcript.bin") if d == "SENT")
    assert len(sent_by_nso) > 50_000 and len(sent_by_third) > 50_000
    if run == "finished":
        nso_secrets = _secrets(register, register_keys(register, "r"))
        third_secrets = _secrets(source, source_keys(source, "s")[0])
    else:
        nso_secrets = _secrets(register, match_keys(register, "r", tuple(KEYS)).ravel().tolist()
                               + register_keys(register, "r"))
        third_secrets = _secrets(source, source_match_keys(source, "s", tuple(KEYS))[0] + source_keys(source, "s")[0])
    assert not [s for s in nso_secrets if s in sent_by_nso]
    assert not [s for s in third_secrets if s in sent_by_third]
    # the check can fail: the same test finds a key planted in the stream
    assert nso_secrets[0] in sent_by_nso + nso_secrets[0]


def test_the_estimator_corrects_key_errors_and_carries_the_release_noise():
    rng = np.random.default_rng(0)
    lam, lam_se = match_rate(1000, 900)
    e = estimate(7200, 10_000, "register", 1.0, lam, lam_se, None, rng)  # 0.8 covered, 0.9 of keys match
    assert e.coverage == pytest.approx(0.8) and e.ci_low < 0.8 < e.ci_high
    assert e.coverage_uncorrected == pytest.approx(0.72)  # the bias without the clerical sample
    survey = estimate(720, 1000, "survey", 2.0, lam, lam_se, None, rng)
    assert survey.ci_high - survey.ci_low > e.ci_high - e.ci_low  # a sample, and a design effect
    noisy = [release(5000, 0.5, np.random.default_rng(s))[0] - 5000 for s in range(4000)]
    _, var = release(5000, 0.5, rng)
    assert var == pytest.approx(2 * math.exp(-0.5) / (1 - math.exp(-0.5)) ** 2)
    assert np.mean(noisy) == pytest.approx(0, abs=0.3) and np.var(noisy) == pytest.approx(var, rel=0.1)
    dp = estimate(7200, 10_000, "register", 1.0, lam, lam_se, 0.1, np.random.default_rng(1))
    assert dp.ci_high - dp.ci_low > e.ci_high - e.ci_low and dp.epsilon == 0.1


def test_keys_are_normalised_alike_and_bad_lists_are_refused_with_their_rows():
    a = pd.DataFrame({"first_name": ["Zoë"], "surname": ["Müller-Lüdenscheidt"], "birth_date": ["1980-02-03"],
                      "postcode": ["10 115"]})
    b = pd.DataFrame({"first_name": ["ZOE"], "surname": ["muller ludenscheidt"], "birth_date": ["1980-02-03"],
                      "postcode": ["10115"]})
    assert normalise(a, "a").tolist() == normalise(b, "b").tolist() == ["ZOE|MULLERLUDENSCHEIDT|19800203|10115"]
    with pytest.raises(UserError, match="the list is empty"):
        normalise(a.iloc[:0], "x")
    bad = pd.concat([a] * 3, ignore_index=True)
    bad.loc[1, "birth_date"] = "1980-02-31"
    bad.loc[2, "surname"] = " - "
    with pytest.raises(UserError, match=r"column 'surname' in rows 3 .*\n.*column 'birth_date' in rows 2"):
        normalise(bad, "x")
    with pytest.raises(UserError, match="rows 1, 2 repeat a person's key"):
        register_keys(pd.concat([a, b], ignore_index=True), "reg")
    assert source_keys(pd.concat([a, b, a], ignore_index=True), "src") == (normalise(a, "a").tolist(), 2)
    near = b.assign(surname="Other")  # another record sharing a loosened key is not a repeat
    assert source_match_keys(pd.concat([a, b, near], ignore_index=True), "src", ("no_surname",)) == (
        ["no_surname:ZOE|19800203|10115"], 1)
    with pytest.raises(UserError, match=r"missing column\(s\) \['postcode'\]"):
        normalise(a.drop(columns=["postcode"]), "x")


def test_mismatched_settings_and_a_vanishing_peer_end_with_clear_messages(finished, tmp_path):
    reg, src = finished / "nso" / "register.csv", finished / "third_party" / "source.csv"
    serve = _ppml("coverage", "serve", "--source", str(src), "--port", "0", "--ready-file", str(tmp_path / "port"),
                  "--out", str(tmp_path / "learned.json"), "--structure", "gcs", "--timeout", "30")
    measure = _ppml("coverage", "measure", "--register", str(reg), "--out", str(tmp_path / "r.json"),
                    "--structure", "raw", "--timeout", "30", "--connect")
    script = textwrap.dedent(f"""
        {serve} > {tmp_path}/serve.log 2>&1 & SERVE=$!
        while [ ! -s {tmp_path}/port ]; do sleep 0.1; done
        {measure} 127.0.0.1:$(cat {tmp_path}/port) > {tmp_path}/measure.log 2>&1; echo MEASURE $?
        wait $SERVE; echo SERVE $?
        python3 -c "import socket; s=socket.create_server(('127.0.0.1', 47123)); c,_=s.accept(); c.close()" & sleep 0.5
        {measure} 127.0.0.1:47123 > {tmp_path}/gone.log 2>&1; echo GONE $?
    """)
    proc = _isolated(script, timeout=120)
    assert "MEASURE 2" in proc.stdout and "SERVE 2" in proc.stdout and "GONE 2" in proc.stdout, proc.stdout
    said = (tmp_path / "measure.log").read_text()
    assert "mismatched protocol settings" in said and "data_structure" in said and "Traceback" not in said
    assert "refused the NSO" in (tmp_path / "serve.log").read_text()
    assert "disconnected" in (tmp_path / "gone.log").read_text()
    empty = tmp_path / "empty.csv"
    empty.write_text("first_name,surname,birth_date,postcode\n")
    proc = _isolated(_ppml("coverage", "measure", "--register", str(empty), "--out", str(tmp_path / "e.json"),
                           "--connect", "127.0.0.1:1"))
    assert proc.returncode == 2 and "the list is empty" in proc.stderr


def test_a_coverage_sweep_reports_intervals_against_the_truth(tmp_path):
    (tmp_path / "cov.toml").write_text(CONFIG.replace("register_size = 3000", "register_size = 1000")
                                       .replace("clerical_sample = 400", "clerical_sample = 200"))
    (tmp_path / "s.toml").write_text(f'[sweep]\nname = "cs"\nbase = "{tmp_path / "cov.toml"}"\nseeds = [0, 1]\n'
                                     '[sweep.grid]\n"coverage.epsilon" = [0.5, 4.0]\n')
    proc = _isolated(_ppml("sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw")) + " && "
                     + _ppml("report", str(tmp_path / "sw")))
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = pd.read_csv(tmp_path / "sw" / "results.csv")
    assert len(table) == 4 and table["coverage.true_coverage"].nunique() == 2  # each seed its own population
    report = (tmp_path / "sw" / "report" / "report.md").read_text()
    assert "private set intersection" in report and (tmp_path / "sw" / "report" / "coverage_intervals.png").exists()


def test_the_count_is_released_with_dp_by_default_and_the_third_party_refuses_small_key_sets(finished, tmp_path):
    c = json.loads((finished / "summary.json").read_text())["coverage"]
    assert c["epsilon"] == 1.0 and c["noise_variance"] > 0 and c["randomness"] == "reproducible"
    reg, src = finished / "nso" / "register.csv", finished / "third_party" / "source.csv"
    serve = _ppml("coverage", "serve", "--source", str(src), "--port", "0", "--ready-file", str(tmp_path / "port"),
                  "--out", str(tmp_path / "learned.json"), "--timeout", "30", "--min-nso-keys", "100")
    measure = _ppml("coverage", "measure", "--register", str(reg), "--out", str(tmp_path / "r.json"),
                    "--design", "survey", "--sample-size", "50", "--timeout", "30", "--connect")
    script = textwrap.dedent(f"""
        {serve} > {tmp_path}/serve.log 2>&1 & SERVE=$!
        while [ ! -s {tmp_path}/port ]; do sleep 0.1; done
        {measure} 127.0.0.1:$(cat {tmp_path}/port) > {tmp_path}/measure.log 2>&1; echo MEASURE $?
        wait $SERVE; echo SERVE $?
    """)
    proc = _isolated(script, timeout=120)
    assert "MEASURE 2" in proc.stdout and "SERVE 2" in proc.stdout, proc.stdout
    said = (tmp_path / "measure.log").read_text()
    assert "50 keys, fewer than this third party's minimum of 100" in said and "Traceback" not in said
    bad = _isolated(_ppml("coverage", "measure", "--register", str(reg), "--out", str(tmp_path / "b.json"),
                          "--epsilon", "0", "--connect", "127.0.0.1:1"))
    assert bad.returncode == 2 and "--epsilon 0: allowed 0 < epsilon <= 100, or 'none'" in bad.stderr


def test_several_match_keys_count_the_union_and_need_no_clerical_sample(finished_keys, finished):
    """DH-PSI on Curve25519 with grouped responses counts the persons any key matches: exactly the
    count a plain (insecure) join of the same lists gives, and at 15 % key errors within a point of
    the truth without a clerical sample, where the exact key alone misses about 15 %."""
    register, source = _lists(finished_keys)
    theirs = set(match_keys(source, "s", tuple(KEYS)).ravel().tolist())
    union = sum(any(k in theirs for k in g) for g in match_keys(register, "r", tuple(KEYS)))
    exact = len(set(normalise(register, "r").tolist()) & set(normalise(source, "s").tolist()))
    c = json.loads((finished_keys / "summary.json").read_text())["coverage"]
    assert c["matched"] == union and c["method"] == "x25519" and c["match_keys"] == KEYS
    assert abs(c["coverage"] - c["true_coverage"]) < 0.01
    assert exact / 3000 < c["true_coverage"] - 0.08  # one exact key: the key errors hide matches
    by = c["persons_by_keys_agreeing"]
    assert len(by) == len(KEYS) + 1 and sum(by) == 3000 and by[0] == 3000 - union and by[1] > 0 and by[-1] > 0
    learned = json.loads((finished_keys / "third_party" / "learned.json").read_text())
    assert learned["nso_keys"] == 3000 and learned["padded_to"] == 2 * 3000 * len(KEYS)


def _times_8(u: int) -> int:
    """[8]P on Curve25519 from P's u-coordinate: three x-only doublings (RFC 7748's formulas)."""
    p, a = 2 ** 255 - 19, 486662
    for _ in range(3):
        u = (u * u - 1) ** 2 * pow(4 * u * (u * u + a * u + 1), -1, p) % p
    return u


def test_the_curve25519_exponents_undo_and_a_malformed_answer_is_refused():
    from coverage_psi.psi_x25519 import NSOX25519, ThirdPartyX25519, _hash_chunk, _raise_chunk, _scalar_pair

    from nacl import bindings as sodium

    keys = [f"key{i}" for i in range(200)]
    points = _hash_chunk(keys)
    # Elligator 2 written here is libsodium's map: equal to its points once the cofactor is cleared
    assert [_times_8(int.from_bytes(points[i:i + 32], "little")) for i in range(0, len(points), 32)] == [
        int.from_bytes(sodium.crypto_sign_ed25519_pk_to_curve25519(sodium.crypto_core_ed25519_from_uniform(
            hashlib.sha512(k.encode()).digest()[:32])), "little") for k in keys]
    b = _scalar_pair()[0]
    for _ in range(5):  # undoing a leaves the subgroup component, which is all that b's powers hold
        a, inverse = _scalar_pair()
        assert _raise_chunk((b, _raise_chunk((inverse, _raise_chunk((a, points)))))) == _raise_chunk((b, points))
    nso, third = NSOX25519(1), ThirdPartyX25519(1, 2)
    setup = third.setup(["k1", "k2"], 10)
    assert len(setup) == 10 * 16  # padded to the agreed size, fingerprints only
    response = third.respond(nso.request(np.array([["k1", "x"], ["y", "z"]])))
    assert nso.count(setup, response) == {"matched": 1, "persons_by_keys_agreeing": [1, 1, 0]}
    with pytest.raises(ValueError, match="not 2 per person"):
        nso.count(setup, response[:32])
    with pytest.raises(ValueError, match="not a multiple of the 2 keys"):
        third.respond(response[:96])


@pytest.mark.parametrize("protocol, message", [
    ('method = "ecdh-p256"\nmatch_keys = ["exact", "no_surname"]', "OpenMined's PSI shuffles every key alone"),
    ('method = "x25519"\nmatch_keys = ["no_middle_name"]', "allowed exact, no_surname"),
    ('method = "x25519"\nmatch_keys = ["no_first", "no_first"]', "names a key twice"),
    ('method = "rsa"', "coverage.protocol.method"),
])
def test_bad_match_key_settings_are_refused_before_any_work(tmp_path, protocol, message):
    (tmp_path / "bad.toml").write_text(CONFIG + f"[coverage.protocol]\n{protocol}\n")
    proc = subprocess.run([sys.executable, "-m", "simulation.cli", "coverage", "run", str(tmp_path / "bad.toml"),
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()
