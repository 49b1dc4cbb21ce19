# Neural-networks assignment: solution, handout and Gradescope autograder.
# `make` does the whole set-up and build; `make test` runs every test.

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
SOLUTION_FILES := $(wildcard solution/*.py)

.DEFAULT_GOAL := all
.PHONY: all setup data handout check-handout doctest solutions test clean

all: setup check-handout doctest
	@echo "== all done"

setup: $(STAMP) data

$(STAMP): requirements.txt tools/make_venv.sh
	sh tools/make_venv.sh $(VENV)
	touch $@

data: $(STAMP)
	@sh tools/install_data.sh $(PY)

handout: $(STAMP)
	$(PY) tools/make_handout.py

check-handout: $(STAMP)
	$(PY) tools/make_handout.py --check

doctest: $(STAMP)
	cd solution && ../$(PY) -m doctest -o ELLIPSIS -o NORMALIZE_WHITESPACE $(notdir $(SOLUTION_FILES)) && echo "solution doctests pass"

# Train every reference model on the full data and check its threshold (about 5 minutes).
solutions: setup
	cd solution && for f in numpy_ann pytorch_ann pytorch_cnn fashionmnist; do \
	    /usr/bin/time -f "$$f: %e s, %M KB peak" ../$(PY) $$f.py || exit 1; done

test: setup
	$(PY) -m pytest -c tests/pytest.ini tests

clean:
	rm -rf build dist
