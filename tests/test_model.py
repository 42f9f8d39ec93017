"""The shipped model: its sidecar describes it, and it finds balls in frames it was never trained on."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bench.detector_accuracy import (
    PASTED_VARIANTS,
    REAL_UNLABELLED,
    real_pasted_score,
    real_score,
    simulator_score,
)
from daemon.sim.dataset import write_dataset
from daemon.sim.realism import PLAIN, Realism
from daemon.vision.detector import file_sha256
from tests.conftest import REPO
from tools.train_detector import (
    CLIP_CROP_SHARE,
    FAST_CLIP_SPEED,
    REAL,
    TrainParams,
    add_lookalike_class,
    build_dataset,
    checkpoint_info,
    real_split,
    train,
    use_every_core,
)

MODEL = REPO / "models" / "ball.onnx"


def test_sidecar_matches_the_shipped_model() -> None:
    sidecar = json.loads(MODEL.with_suffix(".json").read_text())
    assert sidecar["sha256"] == file_sha256(MODEL)
    assert sidecar["names"] == {"0": "ball"}
    training = sidecar["training"]
    # Trained, or an average of trained stages whose shares add up to the whole.
    assert training.get("epochs", 0) > 0 or sum(training["average_of"].values()) == 1.0
    assert MODEL.stat().st_size < 8_000_000


def test_the_verifier_sidecar_matches_the_shipped_verifier_and_detector() -> None:
    verifier = REPO / "models" / "ball_verifier.onnx"
    sidecar = json.loads(verifier.with_suffix(".json").read_text())
    assert sidecar["model"] == verifier.name
    assert sidecar["sha256"] == file_sha256(verifier)
    assert sidecar["detector_sha256"] == file_sha256(MODEL)  # trained on this detector's boxes
    assert int(sidecar["training"]["epochs"]) > 0


def test_shipped_model_finds_balls_in_unseen_rendered_frames() -> None:
    # Frames of clips whose seeds neither training nor the benchmarks use, seen as the daemon sees them.
    score = simulator_score(MODEL, frames=90, seeds=3, first_seed=9_100)
    assert score.truths >= 60
    assert score.hits / score.truths >= 0.95
    assert score.hits / (score.hits + score.false_alarms) >= 0.9


def test_the_unlabelled_real_balls_are_held_out_and_apart_from_the_labelled_ones() -> None:
    _, held = real_split(5)
    stems = {path.stem for path in held}
    for stem, boxes in REAL_UNLABELLED.items():
        assert stem in stems  # never trained on: a training image would keep teaching the model to miss it
        labelled = []
        for line in (REAL / "labels" / f"{stem}.txt").read_text().splitlines():
            _, x, y, _, _ = (float(v) for v in line.split())
            labelled.append((x * 640, y * 480))
        for box in boxes:
            assert all(abs(box.center.x - x) + abs(box.center.y - y) > box.width for x, y in labelled)


def test_the_pasted_row_holds_every_held_out_ball_and_more_on_the_tables() -> None:
    pasted, copies = real_pasted_score(MODEL)
    plain, images = real_score(MODEL)
    # Every held-out image shows a table, so each variant of each gives a copy with at least one ball more.
    assert copies == PASTED_VARIANTS * images
    assert pasted.truths >= PASTED_VARIANTS * plain.truths + copies


DETECTOR_BENCHES = ("bench.detector_accuracy", "bench.detector_looks", "bench.detector_false_alarms")


@pytest.mark.parametrize("bench", DETECTOR_BENCHES)
def test_the_detector_benches_refuse_a_model_that_does_not_load_in_one_line(
    tmp_path: Path, bench: str
) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    for model, reason in (
        (junk, "not a loadable ONNX model"),
        (tmp_path / "absent.onnx", "model file not found"),
    ):
        command = [sys.executable, "-m", bench, "--model", str(MODEL), str(model)]
        result = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60
        )
        assert result.returncode == 2
        assert f"--model: {model}: {reason}" in result.stderr
        assert "Traceback" not in result.stderr
        assert not result.stdout


def test_the_detector_benches_refuse_samples_that_overlap_or_are_empty() -> None:
    for bench in DETECTOR_BENCHES:
        for flags, reason in (
            (("--seeds", "201"), "--seeds must be 1 to 200, not 201"),  # 7000 + 201 runs into the oblique set
            (("--seeds", "0"), "--seeds must be 1 to 200, not 0"),
            (("--frames", "10", "--seeds", "20"), "--frames must be at least --seeds (20), not 10"),
        ):
            result = subprocess.run(
                [sys.executable, "-m", bench, *flags], cwd=REPO, capture_output=True, text=True, check=False,
                timeout=60,
            )  # fmt: skip
            assert (result.returncode, result.stdout) == (2, ""), result.stderr
            assert result.stderr.splitlines()[-1].endswith(reason)


def refusal(tmp_path: Path, *flags: str) -> str:
    """What the training script prints when it refuses FLAGS; it must exit 2 having written nothing."""
    command = [sys.executable, "-m", "tools.train_detector", "--out", str(tmp_path), *flags]
    done = subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert not any(tmp_path.iterdir())
    return done.stderr


def test_training_refuses_seeds_of_validation_and_held_out_data(tmp_path: Path) -> None:
    for seed in ("21", "7", "9"):
        stderr = refusal(tmp_path, "--clip-images", "100", "--clip-train-seed", seed)
        assert f"--clip-train-seed {seed} would train on validation, bench or test clips" in stderr
    assert "--real-repeat must be 0 or more, not -1" in refusal(tmp_path, "--real-repeat", "-1")
    assert "--real-paste must be 0 or more, not -2" in refusal(tmp_path, "--real-paste", "-2")
    assert "--warmup-epochs must be 0 or more, not -1.0" in refusal(tmp_path, "--warmup-epochs", "-1")
    assert "--lr0 must be above 0, not 0.0" in refusal(tmp_path, "--lr0", "0")
    assert "--train-seed 2000 is the validation images' seed" in refusal(tmp_path, "--train-seed", "2000")
    assert "argument --look: must be LOOK=SHARE" in refusal(tmp_path, "--look", "putter=0.5")
    plain = ("--clip-images", "100", "--plain-clip-images", "100")
    assert "--plain-clip-images needs --plain-clip-seed" in refusal(tmp_path, *plain)
    assert "must differ from --clip-train-seed" in refusal(tmp_path, *plain, "--plain-clip-seed", "20")
    stderr = refusal(tmp_path, *plain, "--plain-clip-seed", "8")
    assert "--plain-clip-seed 8 would train on validation, bench or test clips" in stderr
    fast = (*plain, "--plain-clip-seed", "30", "--fast-clip-images", "100")
    assert "--fast-clip-images needs --fast-clip-seed" in refusal(tmp_path, *fast)
    assert "must differ from --clip-train-seed" in refusal(tmp_path, *fast, "--fast-clip-seed", "20")
    assert "must differ from --plain-clip-seed" in refusal(tmp_path, *fast, "--fast-clip-seed", "30")
    stderr = refusal(tmp_path, *fast, "--fast-clip-seed", "21")
    assert "--fast-clip-seed 21 would train on validation, bench or test clips" in stderr
    fast_look = (*fast, "--fast-clip-seed", "31", "--fast-look-clip-images", "100")
    assert "--fast-look-clip-images needs --fast-look-clip-seed" in refusal(tmp_path, *fast_look)
    stderr = refusal(tmp_path, *fast_look, "--fast-look-clip-seed", "31")
    assert "--fast-look-clip-seed must differ from --fast-clip-seed" in stderr
    stderr = refusal(tmp_path, *fast_look, "--fast-look-clip-seed", "9")
    assert "--fast-look-clip-seed 9 would train on validation, bench or test clips" in stderr
    putter = (*fast_look, "--fast-look-clip-seed", "32", "--putter-clip-images", "100")
    assert "--putter-clip-images needs --putter-clip-seed" in refusal(tmp_path, *putter)
    stderr = refusal(tmp_path, *putter, "--putter-clip-seed", "32")
    assert "--putter-clip-seed must differ from --fast-look-clip-seed" in stderr
    stderr = refusal(tmp_path, *putter, "--putter-clip-seed", "7")
    assert "--putter-clip-seed 7 would train on validation, bench or test clips" in stderr
    not_weights = tmp_path.parent / f"{tmp_path.name}-not.pt"
    not_weights.write_text("not a checkpoint")
    stderr = refusal(tmp_path, "--init", str(not_weights))
    assert f"--init {not_weights}: not an Ultralytics checkpoint" in stderr
    stderr = refusal(tmp_path, "--init", str(not_weights), "--imgsz", "448")
    assert f"--init {not_weights}: not an Ultralytics checkpoint" in stderr
    assert "--init nowhere.pt: no such file" in refusal(tmp_path, "--init", "nowhere.pt")


def test_fine_tuning_the_shipped_weights_keeps_their_input_size() -> None:
    sidecar = json.loads(MODEL.with_suffix(".json").read_text())
    imgsz, names = checkpoint_info(MODEL.with_suffix(".pt"))
    assert imgsz == sidecar["imgsz"][0] == sidecar["training"]["imgsz"]
    assert names == {int(k): v for k, v in sidecar["names"].items()}


def test_training_computes_on_every_core_after_ultralytics_sets_one_fewer() -> None:
    import torch  # the export extra, imported where training imports it

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # what Ultralytics' select_device leaves on a two-core machine
        use_every_core(None)
        assert torch.get_num_threads() == os.cpu_count()
    finally:
        torch.set_num_threads(before)


def test_training_learns_at_the_rate_it_is_given(tmp_path: Path) -> None:
    import torch  # the export extra, imported where training imports it

    params = TrainParams(
        architecture="yolo26-d0.33-w0.125", depth=0.33, width=0.125, imgsz=64, epochs=1, batch=2, seed=0,
        sim_images=4, sim_val_images=2, sim_train_seed=41, sim_val_seed=2000, real_repeat=0,
        real_holdout_every=5, mosaic=0.0, crop_share=0.0, lr0=0.0003, clip_images=0, clip_val_images=0,
        clip_train_seed=20, clip_val_seed=21, init_weights="",
    )  # fmt: skip
    threads = torch.get_num_threads()
    try:
        best = train(argparse.Namespace(out=tmp_path / "work", resume=False, init=None), params)
    finally:
        torch.set_num_threads(threads)
    # Ultralytics writes the optimizer and rate it trained with over the ones it was asked for.
    used = torch.load(best, map_location="cpu", weights_only=False)["train_args"]
    assert (used["optimizer"], used["lr0"], used["warmup_epochs"]) == ("AdamW", 0.0003, 3.0)
    recorded = json.loads((best.parent / "train_meta.json").read_text())["training"]
    assert (recorded["optimizer"], recorded["lr0"]) == ("AdamW", 0.0003)


def test_a_ball_only_model_grows_a_lookalike_class_that_starts_as_its_ball_class(tmp_path: Path) -> None:
    import torch  # the export extra, imported where training imports it
    from ultralytics import YOLO

    params = TrainParams(
        architecture="yolo26-d0.33-w0.125", depth=0.33, width=0.125, imgsz=64, epochs=1, batch=2, seed=0,
        sim_images=4, sim_val_images=2, sim_train_seed=41, sim_val_seed=2000, real_repeat=0,
        real_holdout_every=5, mosaic=0.0, crop_share=0.0, lr0=0.0003, clip_images=0, clip_val_images=0,
        clip_train_seed=20, clip_val_seed=21, init_weights="", realism_share=1.0, lookalike_class=True,
    )  # fmt: skip
    net = YOLO(str(REPO / "models" / "ball.pt")).model.float().eval()
    picture = torch.rand(1, 3, 128, 160)
    with torch.no_grad():
        before = net(picture)[0]
        add_lookalike_class(net)
        after = net(picture)[0]
    # Raw output: (batch, 4 box values + a score per class, anchors). The ball's rows are kept and the
    # lookalike's copy them, up to the last bits a convolution kernel picked for another width may change.
    assert (before.shape[1], after.shape[1]) == (5, 6)
    torch.testing.assert_close(after[:, :5], before, rtol=0.0, atol=1e-6)
    torch.testing.assert_close(after[:, 5], after[:, 4], rtol=0.0, atol=1e-6)
    threads = torch.get_num_threads()
    try:
        best = train(
            argparse.Namespace(out=tmp_path / "work", resume=False, init=REPO / "models" / "ball.pt"), params
        )
    finally:
        torch.set_num_threads(threads)
    assert YOLO(str(best)).names == {0: "ball", 1: "lookalike"}
    labels = (tmp_path / "work" / "data" / "labels" / "train").glob("*.txt")
    assert any(line.startswith("1 ") for label in labels for line in label.read_text().splitlines())
    refused = tmp_path / "refused"
    refused.mkdir()
    stderr = refusal(refused, "--init", str(best))
    assert f"--init {best} has the lookalike class: train it on with --lookalike-class" in stderr


def test_each_extra_clip_set_has_the_frames_and_looks_it_asks_for(tmp_path: Path) -> None:
    params = TrainParams(
        architecture="yolo26-d0.33-w0.125", depth=0.33, width=0.125, imgsz=384, epochs=1, batch=2, seed=0,
        sim_images=1, sim_val_images=1, sim_train_seed=41, sim_val_seed=2000, real_repeat=0,
        real_holdout_every=5, mosaic=0.0, crop_share=0.0, lr0=0.001, clip_images=0, clip_val_images=0,
        clip_train_seed=20, clip_val_seed=21, init_weights="", realism_share=1.0,
        plain_clip_images=12, plain_clip_seed=42, look_shares=(("lookalike", 0.0), ("glare", 0.5)),
        fast_clip_images=12, fast_clip_seed=43, fast_clip_speed=FAST_CLIP_SPEED,
        fast_look_clip_images=12, fast_look_clip_seed=44, putter_clip_images=12, putter_clip_seed=45,
    )  # fmt: skip
    data = build_dataset(tmp_path / "work", params).parent
    asked = replace(Realism.every(1.0), lookalike=0.0, glare=0.5)
    for prefix, seed, speed, realism, putter in (
        ("plain_", 42, 0.0, PLAIN, False),
        ("fast_", 43, FAST_CLIP_SPEED, PLAIN, False),
        ("fastlook_", 44, FAST_CLIP_SPEED, asked, False),
        # The putter's frames always have its look-alike insert, whatever share the scenes give it.
        ("putter_", 45, 0.0, replace(asked, lookalike=1.0), True),
    ):
        made = sorted((data / "images" / "train").glob(f"{prefix}*.jpg"))
        assert len(made) == 12
        expected = tmp_path / f"expected-{prefix}"
        write_dataset(expected, 12, seed, crop_share=CLIP_CROP_SHARE, realism=realism, from_clips=True,
                      min_speed=speed, putter_frames=putter, progress=False)  # fmt: skip
        for image in made:
            twin = expected / "images" / image.name.removeprefix(prefix)
            assert image.resolve().read_bytes() == twin.read_bytes(), image.name
    # The scene images have the harder looks, each at its own share where one is given.
    (scene,) = (data / "images" / "train").glob("sim_*.jpg")
    write_dataset(tmp_path / "asked", 1, 41, realism=asked, progress=False)
    assert scene.resolve().read_bytes() == (tmp_path / "asked" / "images" / scene.name[4:]).read_bytes()
    write_dataset(tmp_path / "every", 1, 41, realism=Realism.every(1.0), progress=False)
    assert scene.resolve().read_bytes() != (tmp_path / "every" / "images" / scene.name[4:]).read_bytes()


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_terminated_training_stops_the_simulator_it_started(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tools.train_detector", "--out", str(tmp_path), "--sim-images", "5000"]
    training = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (children := children_of(training.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert children, "training started no simulator"
        training.send_signal(signal.SIGTERM)
        assert training.wait(timeout=30) == 128 + signal.SIGTERM
        assert not [child for child in children if Path(f"/proc/{child}").exists()]
    finally:
        training.kill()
        training.wait()
