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
        criterion = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(self.model.parameters(), lr=learning_rate)
        N = X_train.shape[0]
        for epoch in range(epochs):
            self.model.train()
            perm = torch.randperm(N)
            for i in range(0, N, batch_size):
                idx = perm[i:i + batch_size]
                X_batch, y_batch = X_train[idx], y_train[idx]
                optimizer.zero_grad()
                outputs = self.forward(X_batch)
                loss = criterion(outputs, y_batch)
                loss.backward()
                optimizer.step()

            # evaluate on the whole training and validation sets
            self.model.eval()
            with torch.no_grad():
                train_loss = criterion(self.forward(X_train), y_train).item()
                val_loss = criterion(self.forward(X_val), y_val).item()
            train_acc = self.accuracy(X_train, y_train)
            val_acc = self.accuracy(X_val, y_val)
            self.train_val_metrics["train_losses"].append(train_loss)
            self.train_val_metrics["train_accs"].append(train_acc)
            self.train_val_metrics["val_losses"].append(val_loss)
            self.train_val_metrics["val_accs"].append(val_acc)
            print(f"Epoch [{epoch + 1}/{epochs}], Loss: {train_loss:.4f}, Accuracy: {train_acc:.4f}, "
                  f"Val Loss: {val_loss:.4f}, Val Accuracy: {val_acc:.4f}")
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
            outputs = self.forward(X)
            labels = torch.argmax(outputs, dim=1)
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
        predictions = self.predict(X)
        acc = (predictions == y.argmax(dim=1)).sum().item() / y.shape[0]
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
        epochs = range(1, len(self.train_val_metrics["train_losses"]) + 1)
        axes[0].plot(epochs, self.train_val_metrics["train_losses"], label="Train Loss")
        axes[0].plot(epochs, self.train_val_metrics["val_losses"], label="Validation Loss")
        axes[0].set_xlabel("Epoch")
        axes[0].set_ylabel("Loss")
        axes[0].set_title("Loss")
        axes[0].legend()
        axes[1].plot(epochs, self.train_val_metrics["train_accs"], label="Train Accuracy")
        axes[1].plot(epochs, self.train_val_metrics["val_accs"], label="Validation Accuracy")
        axes[1].set_xlabel("Epoch")
        axes[1].set_ylabel("Accuracy")
        axes[1].set_title("Accuracy")
        axes[1].legend()
        plt.tight_layout()
        plt.savefig("pytorch_ann_train_val_metrics.png")
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
        train_acc = self.train_val_metrics["train_accs"][-1]
        val_acc = self.train_val_metrics["val_accs"][-1]
        if train_acc - val_acc > 0.05:
            judgement = "overfitting"
        elif train_acc < 0.80:
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
