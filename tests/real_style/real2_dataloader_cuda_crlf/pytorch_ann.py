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
import torch.nn as nn

from utils import (assert_greater_equal, exit_if_unimplemented, keeps_module_modes,
                   load_mnist_f, pick_device, print_blue, run_doctests)

THRESHOLD = 0.80

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
PLOT_FILE = "pytorch_ann_train_val_metrics.png"


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
        logits = self.model(X)
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
        self.to(device)
        loss_fn = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(self.parameters(), lr=learning_rate)
        train_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X_train, y_train),
                                                   batch_size=batch_size, shuffle=True)
        for epoch in range(epochs):
            self.model.train()
            for inputs, targets in train_loader:
                inputs, targets = inputs.to(device), targets.to(device)
                optimizer.zero_grad()
                outputs = self(inputs)
                loss = loss_fn(outputs, targets.argmax(dim=1))
                loss.backward()
                optimizer.step()

            train_loss, train_acc = self._evaluate(X_train, y_train, loss_fn)
            val_loss, val_acc = self._evaluate(X_val, y_val, loss_fn)
            self.train_val_metrics["train_losses"].append(train_loss)
            self.train_val_metrics["train_accs"].append(train_acc)
            self.train_val_metrics["val_losses"].append(val_loss)
            self.train_val_metrics["val_accs"].append(val_acc)
        # <<< END OF YOUR CODE <<<

    def _evaluate(self, X, y, loss_fn):
        """my helper: (mean loss, accuracy) on a whole data set"""
        self.model.eval()
        with torch.no_grad():
            out = self.forward(X.to(device))
            loss = loss_fn(out, y.to(device).argmax(dim=1)).item()
            acc = (out.argmax(dim=1) == y.to(device).argmax(dim=1)).float().mean().item()
        return loss, acc

    def _last(self, key):
        return self.train_val_metrics[key][-1]

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
            out = self.forward(X.to(device))
        labels = out.argmax(dim=1).cpu()
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
        pred = self.predict(X)
        correct = (pred == torch.argmax(y, dim=1).cpu()).sum().item()
        acc = correct / len(y)
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
        m = self.train_val_metrics
        axes[0].plot(m["train_losses"], "b-", label="train")
        axes[0].plot(m["val_losses"], "r-", label="val")
        axes[0].set_xlabel("epoch")
        axes[0].set_ylabel("cross-entropy loss")
        axes[0].legend()
        axes[1].plot(m["train_accs"], "b-", label="train")
        axes[1].plot(m["val_accs"], "r-", label="val")
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("accuracy")
        axes[1].legend()
        fig.savefig("pytorch_ann_train_val_metrics.png")
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
        t = self._last("train_accs")
        v = self._last("val_accs")
        if t - v > 0.05:
            judgement = "overfitting"
        else:
            if t < 0.80:
                judgement = "underfitting"
            else:
                judgement = "generalizing"
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
    main()
