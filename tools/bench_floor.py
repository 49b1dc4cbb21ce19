"""The floor for `make bench`: the training and evaluation one grade needs,
run directly on the reference classes without the grader.

    python tools/bench_floor.py GROUP [--cpus Q] [--python PY]
        prints the seconds spent in training/evaluation calls

GROUP is a graded file, or pytorch_cnn_accuracy: only the training calls of the CNN's
accuracy test (the grader's test adds its worker's start, the requests and its own
evaluation of the test images).  --cpus runs it inside a cgroup with that CPU quota
(root; the Gradescope tiers, tools/gradescope_sim.py), with one thread, and --python
with another interpreter (build/sim-venv/bin/python: the CPU-only torch of the zip).
"""
import os
import sys
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "solution"))


from utils import load_mnist_f, one_hot  # noqa: E402


def main(group):
    with open(os.path.join(ROOT, "autograder", "config.toml"), "rb") as fh:
        budget = tomllib.load(fh)["budget"]
    threads = int(os.environ.get("NNAG_WORKER_THREADS") or 0)
    X_train, y_train, X_test, y_test = load_mnist_f(allow_download=False)
    spent = 0.0
    if group == "numpy_ann":
        from numpy_ann import NumpyANN
        b = budget[group]
        n = b["train_images"]
        X = X_train[:n].reshape(n, 784) / 255.0
        Xv = X_train[-1000:].reshape(1000, 784) / 255.0
        start = time.time()
        NumpyANN(784, b["hidden_size"], 10, b["lr"], random_seed=b["seed"]).train(
            X, one_hot(y_train[:n]), Xv, one_hot(y_train[-1000:]), epochs=b["epochs"], batch_size=b["batch_size"])
        spent = time.time() - start
    else:
        import torch
        if threads:
            torch.set_num_threads(threads)
        eye = torch.eye(10)

        def images(a, flat=False):
            t = torch.from_numpy(a).float() / 255
            return t.reshape(len(a), 784) if flat else t.unsqueeze(1)

        if group == "pytorch_ann":
            from pytorch_ann import PyTorchANN
            b = budget[group]
            val = (images(X_train[50000:], True), eye[y_train[50000:]])
            start = time.time()
            for n, schedule in ((b["train_images"], b["schedule"]), (50000, [(10, b["lr"])])):  # accuracy, judgement
                net = PyTorchANN(784, b["hidden_size"], 10)
                for epochs, lr in schedule:
                    net.train(images(X_train[:n], True), eye[y_train[:n]], *val, epochs=epochs,
                              batch_size=b["batch_size"], learning_rate=lr)
            spent = time.time() - start
        elif group in ("pytorch_cnn", "pytorch_cnn_accuracy"):
            from pytorch_cnn import PyTorchCNN
            b = budget["pytorch_cnn"]
            n, chunk = b["train_images"], b["chunk"]
            calls = (n + chunk - 1) // chunk
            xv, yv = images(X_train[-b["val_images"]:]), eye[y_train[-b["val_images"]:]]
            start = time.time()
            net = PyTorchCNN(random_seed=b["seed"])
            for i, s in enumerate(range(0, n, chunk)):
                lr = b["lr_start"] * (b["lr_end"] / b["lr_start"]) ** (i / max(calls - 1, 1))
                net.train(images(X_train[s:s + chunk]), eye[y_train[s:s + chunk]], xv, yv, epochs=1,
                          learning_rate=lr)
            if group == "pytorch_cnn_accuracy":
                print(f"{time.time() - start:.2f}")
                return
            net.predict(images(X_test[:b["test_images"]]))
            m, v = b["judgement_train_images"], b["judgement_val_images"]
            PyTorchCNN().train(images(X_train[:m]), eye[y_train[:m]], images(X_train[50000:50000 + v]),
                               eye[y_train[50000:50000 + v]], epochs=b["judgement_epochs"])
            spent = time.time() - start
        elif group == "fashionmnist":
            import fashionmnist
            start = time.time()
            model = fashionmnist.load_model(os.path.join(ROOT, "solution", "fmnist.pth"))
            fashionmnist.predict(model, images(X_test[:budget[group]["test_images"]]))
            spent = time.time() - start
        else:
            raise SystemExit(f"bench_floor: unknown group {group!r}")
    print(f"{spent:.2f}")


def in_cgroup(group, cpus, python):
    """Run this tool for ``group`` inside a cgroup with a CPU quota of ``cpus``, one thread; its seconds."""
    import subprocess
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from gradescope_sim import Cgroup
    env = dict(os.environ, NNAG_WORKER_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    cgroup = Cgroup(f"nnag-floor-{os.getpid()}", cpus, 4096)
    try:
        out = subprocess.run([python, os.path.abspath(__file__), group], env=env, capture_output=True, text=True,
                             preexec_fn=cgroup.enter)
    finally:
        cgroup.kill_all()
        cgroup.remove()
    if out.returncode != 0:
        raise SystemExit(f"bench_floor: {group} failed in the cgroup:\n{out.stderr[-2000:]}")
    print(out.stdout.split()[-1])


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("group")
    parser.add_argument("--cpus", type=float, default=None, help="run inside a cgroup with this CPU quota (root)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter (with --cpus)")
    options = parser.parse_args()
    if options.cpus:
        in_cgroup(options.group, options.cpus, options.python)
    else:
        main(options.group)
