"""A two-layer neural network in PyTorch, trained on Fashion-MNIST.

Inputs everywhere in this file:
  X  float32 tensor (N, input_size), pixels scaled to [0, 1]
  y  float32 one-hot tensor (N, output_size)
No method changes the tensors it is given: work on copies where you need to.

Run ``python pytorch_ann.py`` to run the doctests, train, plot, and print the
test accuracy against the assignment's threshold (0.80).
"""
import sys
import time

import matplotlib
import torch
import numpy as np
import torch.nn as nn

from utils import (assert_greater_equal, exit_if_unimplemented, keeps_module_modes,
                   load_mnist_f, pick_device, print_blue, run_doctests)

THRESHOLD = 0.80
PLOT_FILE = "pytorch_ann_train_val_metrics.png"


def record_epoch(net, criterion, X_train, y_train, X_val, y_val):
    """append loss and accuracy on the whole train / val sets (eval mode, no grad)"""
    net.model.eval()
    with torch.no_grad():
        for name, X, y in (("train", X_train, y_train), ("val", X_val, y_val)):
            out = net.forward(X)
            net.train_val_metrics[name + "_losses"].append(criterion(out, y).item())
            hits = (out.argmax(1) == y.argmax(1)).sum().item()
            net.train_val_metrics[name + "_accs"].append(hits / len(X))


def judge(metrics):
    """my rule (same as the handout's): look at the gap first, then at the training accuracy"""
    gap = metrics["train_accs"][-1] - metrics["val_accs"][-1]
    if gap > 0.05:
        return "overfitting"
    return "underfitting" if metrics["train_accs"][-1] < 0.80 else "generalizing"


class PyTorchANN(nn.Module):
    """input -> Linear -> ReLU -> Linear (logits), in ``self.model``."""

    def __init__(self, input_size, hidden_size, output_size, random_seed=42):
        super().__init__()
        torch.manual_seed(random_seed)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.seed = random_seed
        self.model = nn.Sequential(
            nn.Linear(input_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, output_size),
        )
        self.train_val_metrics = {"train_losses": [], "train_accs": [], "val_losses": [], "val_accs": []}

    def forward(self, X):
        """Logits, float32 (N, output_size), for X float32 (N, input_size).

        >>> PyTorchANN(3, 4, 2)(torch.ones(5, 3)).shape
        torch.Size([5, 2])
        """
        logits = None
        # >>> YOUR CODE HERE >>>
        hidden = self.model[1](self.model[0](X))   # Linear -> ReLU
        logits = self.model[2](hidden)              # -> Linear
        # <<< END OF YOUR CODE <<<
        return logits

    @keeps_module_modes
    def train(self, X_train, y_train, X_val, y_val, epochs, batch_size, learning_rate):
        """Mini-batch training with nn.CrossEntropyLoss and torch.optim.SGD.

        X_train, X_val: float32 (N, input_size); y_train, y_val: one-hot
        float32 (N, output_size) (CrossEntropyLoss accepts them as class
        probabilities).  Each epoch: shuffle, one optimiser step per batch of
        ``batch_size`` rows (zero the gradients first), then append to
        ``self.train_val_metrics`` the mean loss and the accuracy on the
        whole training and validation sets, so each of its four lists
        ("train_losses", "train_accs", "val_losses", "val_accs") has one float
        per epoch.  Use ``self.model.train()`` / ``self.model.eval()`` to switch
        modes: this method hides nn.Module.train.

        >>> net = PyTorchANN(3, 4, 2)
        >>> X = torch.rand(10, 3); y = torch.eye(2)[torch.arange(10) % 2]
        >>> net.train(X, y, X, y, epochs=3, batch_size=4, learning_rate=0.1)
        >>> [len(v) for v in net.train_val_metrics.values()]
        [3, 3, 3, 3]
        """
        # >>> YOUR CODE HERE >>>
        criterion = nn.CrossEntropyLoss()
        opt = torch.optim.SGD(self.model.parameters(), lr=learning_rate)
        n_samples = len(X_train)
        for ep in range(epochs):
            self.model.train()
            perm = np.random.permutation(n_samples)        # new order every epoch
            for k in range(0, n_samples, batch_size):
                batch_idx = perm[k:k + batch_size]
                xb, yb = X_train[batch_idx], y_train[batch_idx]
                opt.zero_grad()
                batch_loss = criterion(self.forward(xb), yb)
                batch_loss.backward()
                opt.step()
            record_epoch(self, criterion, X_train, y_train, X_val, y_val)
            print(f"[{ep + 1:2d}/{epochs}] train loss {self.train_val_metrics['train_losses'][-1]:.4f} "
                  f"acc {self.train_val_metrics['train_accs'][-1]:.3f} | "
                  f"val loss {self.train_val_metrics['val_losses'][-1]:.4f} "
                  f"acc {self.train_val_metrics['val_accs'][-1]:.3f}")
        # <<< END OF YOUR CODE <<<

    def predict(self, X):
        """Predicted labels, an integer tensor (N,), for X float32 (N, input_size).
        Evaluation mode and no gradients; the weights do not change.

        >>> PyTorchANN(3, 4, 2).predict(torch.ones(5, 3)).shape
        torch.Size([5])
        """
        labels = torch.zeros(X.shape[0], dtype=torch.long)
        # >>> YOUR CODE HERE >>>
        self.model.eval()
        with torch.no_grad():
            out = self.forward(X)
        labels = torch.as_tensor(np.argmax(out, axis=1))   # numpy argmax works on the cpu tensor
        # <<< END OF YOUR CODE <<<
        return labels

    def accuracy(self, X, y):
        """Fraction of correct predictions, a number in [0, 1] (a float or a 0-dim
        tensor); y one-hot float32 (N, C), as everywhere in this file.

        >>> float(PyTorchANN(3, 4, 2).accuracy(torch.ones(2, 3), torch.eye(2))) in (0.0, 0.5, 1.0)
        True
        """
        acc = 0.0
        # >>> YOUR CODE HERE >>>
        true_labels = np.argmax(y.numpy(), axis=1)
        acc = float(np.mean(self.predict(X).numpy() == true_labels))
        # <<< END OF YOUR CODE <<<
        return acc

    def plot_train_val_metrics(self):
        """Plot ``self.train_val_metrics``: loss (left) and accuracy (right)
        against the epoch, training and validation curves with a legend and
        axis labels.  Save the figure as 'pytorch_ann_train_val_metrics.png'
        and return ``(fig, axes)`` with two axes.
        """
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        # >>> YOUR CODE HERE >>>
        hist = self.train_val_metrics
        x = np.arange(1, len(hist["train_losses"]) + 1)
        for ax, what in zip(axes, ("losses", "accs")):
            ax.plot(x, hist["train_" + what], marker="o", label="training")
            ax.plot(x, hist["val_" + what], marker="o", label="validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss" if what == "losses" else "accuracy")
            ax.legend()
            ax.grid(True)
        fig.suptitle("PyTorchANN on Fashion-MNIST")
        fig.savefig(PLOT_FILE, dpi=100)
        # <<< END OF YOUR CODE <<<
        return fig, axes

    def report_my_judgement(self):
        """Say what the curves of the main block's training run show.

        Apply this rule to the last epoch of ``self.train_val_metrics``, with
        t = train accuracy and v = validation accuracy:
          - "overfitting"  if t - v > 0.05;
          - otherwise "underfitting" if t < 0.80;
          - otherwise "generalizing".
        Returns one of the three strings.
        """
        judgement = "generalizing"
        # >>> YOUR CODE HERE >>>
        judgement = judge(self.train_val_metrics)
        # <<< END OF YOUR CODE <<<
        return judgement


def main():
    exit_if_unimplemented(__file__)
    run_doctests(sys.modules[__name__])
    matplotlib.use("Agg")
    device = pick_device()
    X_train, y_train, X_test, y_test = load_mnist_f(return_tensor=True)
    X_train = X_train.reshape(-1, 784).float().div(255).to(device)
    X_test = X_test.reshape(-1, 784).float().div(255).to(device)
    y_train = torch.eye(10)[y_train].to(device)
    y_test = torch.eye(10)[y_test].to(device)
    X_tr, y_tr, X_val, y_val = X_train[:50000], y_train[:50000], X_train[50000:], y_train[50000:]

    start = time.time()
    model = PyTorchANN(784, 128, 10).to(device)
    model.train(X_tr, y_tr, X_val, y_val, epochs=10, batch_size=64, learning_rate=0.1)
    print_blue(f"trained in {time.time() - start:.1f} s on {device}")
    model.plot_train_val_metrics()
    print_blue(f"saved {PLOT_FILE}; judgement: {model.report_my_judgement()}")
    ok = assert_greater_equal(model.accuracy(X_test, y_test), THRESHOLD, "PyTorchANN test accuracy")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    # train on a smaller subset to try things quickly: python pytorch_ann.py --quick
    if "--quick" in sys.argv:
        Xtr, ytr, Xte, yte = load_mnist_f(return_tensor=True)
        Xtr = Xtr.reshape(-1, 784).float() / 255
        Xte = Xte.reshape(-1, 784).float() / 255
        Ytr, Yte = torch.eye(10)[ytr], torch.eye(10)[yte]
        net = PyTorchANN(784, 128, 10)
        net.train(Xtr[:10000], Ytr[:10000], Xtr[50000:], Ytr[50000:], epochs=3, batch_size=64, learning_rate=0.1)
        print("judgement:", net.report_my_judgement(), "test acc:", net.accuracy(Xte, Yte))
    else:
        main()
