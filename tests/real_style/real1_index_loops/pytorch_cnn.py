"""A convolutional network in PyTorch, trained on Fashion-MNIST.

Inputs everywhere in this file:
  X  float32 tensor (N, 1, 28, 28), pixels scaled to [0, 1]
  y  float32 one-hot tensor (N, num_classes)
No method changes the tensors it is given: work on copies where you need to.

Run ``python pytorch_cnn.py`` to run the doctests, train, plot, and print the
test accuracy against the assignment's threshold (0.85).
"""
import sys
import time

import matplotlib
import torch
import torch.nn as nn

from utils import (assert_greater_equal, exit_if_unimplemented, keeps_module_modes,
                   load_mnist_f, pick_device, print_blue, run_doctests)

THRESHOLD = 0.85
PLOT_FILE = "pytorch_cnn_train_val_metrics.png"
EVAL_CHUNK = 1000  # images per forward pass when evaluating, to bound memory


class PyTorchCNN(nn.Module):
    """Four conv blocks, then a two-layer classifier, in ``self.model``."""

    def __init__(self, num_classes=10, random_seed=42):
        """Build self.model as an nn.Sequential of exactly:
          4 blocks of [Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1),
                       ReLU, MaxPool2d(kernel_size=2), BatchNorm2d(c_out), Dropout(p=0.3)]
          with channels 1 -> 32 -> 64 -> 128 -> 256 (28x28 -> 14 -> 7 -> 3 -> 1),
          then Flatten, Linear(256, 128), ReLU, Linear(128, num_classes).
        That is 422,986 parameters for 10 classes.
        """
        super().__init__()
        torch.manual_seed(random_seed)
        self.num_classes = num_classes
        self.seed = random_seed
        self.batch_size = 128  # used by the reference's mini-batch training
        self.model = None
        # >>> YOUR CODE HERE >>>
        self.model = nn.Sequential(
            # block 1: 28x28 -> 14x14
            nn.Conv2d(1, 32, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),
            nn.BatchNorm2d(32),
            nn.Dropout(p=0.3),
            # block 2: 14x14 -> 7x7
            nn.Conv2d(32, 64, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),
            nn.BatchNorm2d(64),
            nn.Dropout(p=0.3),
            # block 3: 7x7 -> 3x3
            nn.Conv2d(64, 128, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),
            nn.BatchNorm2d(128),
            nn.Dropout(p=0.3),
            # block 4: 3x3 -> 1x1
            nn.Conv2d(128, 256, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),
            nn.BatchNorm2d(256),
            nn.Dropout(p=0.3),
            # classifier
            nn.Flatten(),
            nn.Linear(256, 128),
            nn.ReLU(),
            nn.Linear(128, num_classes),
        )
        # <<< END OF YOUR CODE <<<
        self.train_val_metrics = {"train_losses": [], "train_accs": [], "val_losses": [], "val_accs": []}

    def forward(self, X):
        """Logits, float32 (N, num_classes), for X float32 (N, 1, 28, 28).

        >>> PyTorchCNN()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
        """
        logits = None
        # >>> YOUR CODE HERE >>>
        logits = self.model(X)
        # <<< END OF YOUR CODE <<<
        return logits

    @keeps_module_modes
    def train(self, X_train, y_train, X_val, y_val, epochs=10, learning_rate=0.001):
        """Train with nn.CrossEntropyLoss and torch.optim.Adam(lr=learning_rate).

        X_train, X_val: float32 (N, 1, 28, 28); y_train, y_val: one-hot float32
        (N, num_classes).  Either is acceptable: one optimiser step per epoch
        on the whole training set (full batch, as the original assignment did;
        needs a lot of memory for 60,000 images), or mini-batches inside each
        epoch (the reference shuffles and uses batches of self.batch_size).
        After each epoch append the training loss and accuracy and the
        validation loss and accuracy to ``self.train_val_metrics`` (one float
        per epoch in each of the four lists).  Use ``self.model.train()`` /
        ``self.model.eval()`` to switch modes: this method hides nn.Module.train.

        >>> net = PyTorchCNN()
        >>> X = torch.rand(8, 1, 28, 28); y = torch.eye(10)[torch.arange(8)]
        >>> net.train(X, y, X, y, epochs=2)
        >>> [len(v) for v in net.train_val_metrics.values()]
        [2, 2, 2, 2]
        """
        # >>> YOUR CODE HERE >>>
        criterion = nn.CrossEntropyLoss()
        optimizer = torch.optim.Adam(self.model.parameters(), lr=learning_rate)
        N = X_train.shape[0]
        for epoch in range(epochs):
            self.model.train()
            perm = torch.randperm(N)
            for i in range(0, N, self.batch_size):
                idx = perm[i:i + self.batch_size]
                optimizer.zero_grad()
                loss = criterion(self.forward(X_train[idx]), y_train[idx])
                loss.backward()
                optimizer.step()

            self.model.eval()
            train_loss, train_acc = 0.0, 0.0
            val_loss, val_acc = 0.0, 0.0
            with torch.no_grad():
                # in chunks so 50,000 images fit in memory
                for i in range(0, N, EVAL_CHUNK):
                    out = self.forward(X_train[i:i + EVAL_CHUNK])
                    yb = y_train[i:i + EVAL_CHUNK]
                    train_loss += criterion(out, yb).item() * yb.shape[0]
                    train_acc += (out.argmax(dim=1) == yb.argmax(dim=1)).sum().item()
                for i in range(0, X_val.shape[0], EVAL_CHUNK):
                    out = self.forward(X_val[i:i + EVAL_CHUNK])
                    yb = y_val[i:i + EVAL_CHUNK]
                    val_loss += criterion(out, yb).item() * yb.shape[0]
                    val_acc += (out.argmax(dim=1) == yb.argmax(dim=1)).sum().item()
            self.train_val_metrics["train_losses"].append(train_loss / N)
            self.train_val_metrics["train_accs"].append(train_acc / N)
            self.train_val_metrics["val_losses"].append(val_loss / X_val.shape[0])
            self.train_val_metrics["val_accs"].append(val_acc / X_val.shape[0])
            print(f"Epoch [{epoch + 1}/{epochs}], Loss: {train_loss / N:.4f}, Accuracy: {train_acc / N:.4f}, "
                  f"Val Loss: {val_loss / X_val.shape[0]:.4f}, Val Accuracy: {val_acc / X_val.shape[0]:.4f}")
        # <<< END OF YOUR CODE <<<

    def predict(self, X):
        """Predicted labels, an integer tensor (N,), for X float32 (N, 1, 28, 28).
        Evaluation mode (BatchNorm running statistics, no dropout), no gradients.

        >>> PyTorchCNN().predict(torch.zeros(3, 1, 28, 28)).shape
        torch.Size([3])
        """
        labels = torch.zeros(X.shape[0], dtype=torch.long)
        # >>> YOUR CODE HERE >>>
        self.model.eval()
        preds = []
        with torch.no_grad():
            for i in range(0, X.shape[0], EVAL_CHUNK):
                preds.append(torch.argmax(self.forward(X[i:i + EVAL_CHUNK]), dim=1))
        labels = torch.cat(preds)
        # <<< END OF YOUR CODE <<<
        return labels

    def accuracy(self, X, y):
        """Fraction of correct predictions, a number in [0, 1] (a float or a 0-dim
        tensor); y one-hot float32 (N, C), as everywhere in this file.

        >>> 0.0 <= float(PyTorchCNN().accuracy(torch.zeros(2, 1, 28, 28), torch.eye(10)[:2])) <= 1.0
        True
        """
        acc = 0.0
        # >>> YOUR CODE HERE >>>
        predictions = self.predict(X)
        acc = (predictions == y.argmax(dim=1)).float().mean().item()
        # <<< END OF YOUR CODE <<<
        return acc

    def plot_train_val_metrics(self):
        """Plot ``self.train_val_metrics``: loss (left) and accuracy (right)
        against the epoch, training and validation curves with a legend and
        axis labels.  Save the figure as 'pytorch_cnn_train_val_metrics.png'
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
        axes[0].legend()
        axes[1].plot(epochs, self.train_val_metrics["train_accs"], label="Train Accuracy")
        axes[1].plot(epochs, self.train_val_metrics["val_accs"], label="Validation Accuracy")
        axes[1].set_xlabel("Epoch")
        axes[1].set_ylabel("Accuracy")
        axes[1].legend()
        plt.tight_layout()
        plt.savefig("pytorch_cnn_train_val_metrics.png")
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
    X_train = X_train.unsqueeze(1).float().div(255).to(device)
    X_test = X_test.unsqueeze(1).float().div(255).to(device)
    y_train = torch.eye(10)[y_train].to(device)
    y_test = torch.eye(10)[y_test].to(device)
    X_tr, y_tr, X_val, y_val = X_train[:50000], y_train[:50000], X_train[50000:], y_train[50000:]

    start = time.time()
    model = PyTorchCNN().to(device)
    model.train(X_tr, y_tr, X_val, y_val, epochs=2, learning_rate=0.001)
    print_blue(f"trained in {time.time() - start:.1f} s on {device}")
    model.plot_train_val_metrics()
    print_blue(f"saved {PLOT_FILE}; judgement: {model.report_my_judgement()}")
    ok = assert_greater_equal(model.accuracy(X_test, y_test), THRESHOLD, "PyTorchCNN test accuracy")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
