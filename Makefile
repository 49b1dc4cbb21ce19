# Neural-networks assignment: solution, handout and Gradescope autograder.
# `make` does the whole set-up and build; `make test` runs every test.

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
SOLUTION_FILES := $(wildcard solution/*.py)

.DEFAULT_GOAL := all
SUBMISSION ?= solution
RESULTS    ?= build/results.json
GRADE      := cd autograder && ../$(PY) -m grader.run

.PHONY: all setup data handout check-handout doctest solutions fixtures grade autograder handout-zip zips \
        check-reference bench bench-batch mutants contract contract-update config alternatives real-style flaky grade-all compare report gradescope-sim \
        test clean

all: setup check-handout doctest zips check-reference
	@echo "== all done: dist/autograder.zip, dist/handout.zip; the reference gets full marks, the handout zero"

setup: $(STAMP) data
	@sh tools/install_chromium.sh

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
	cd solution && for f in $$(cd ../autograder && ../$(PY) -m grader.assignment); do \
	    /usr/bin/time -f "$$f: %e s, %M KB peak" ../$(PY) $$f.py || exit 1; done

fixtures: $(STAMP)
	$(PY) tools/make_fixtures.py

# Grade one submission: make grade SUBMISSION=<dir> [RESULTS=<file>] [ARGS="grader options", e.g. --files numpy_ann]
grade: setup
	@mkdir -p $(dir $(RESULTS))
	$(GRADE) --submission "$(abspath $(SUBMISSION))" --results "$(abspath $(RESULTS))" $(ARGS)

autograder: setup check-handout
	$(PY) tools/build_zips.py autograder

handout-zip: setup check-handout
	$(PY) tools/build_zips.py handout

zips: autograder handout-zip

# The reference must get full marks and the untouched handout zero.
check-reference: setup
	$(PY) tools/check_reference.py

# Wall time and peak memory of grading the reference, per test group, against the
# training-only floor; then again with the worker limited to one thread.
bench: setup
	$(PY) tools/bench.py
	$(PY) tools/bench.py --threads 1

# The unpacked zip as Gradescope runs it, inside one tier's CPU quota, memory limit and timeout
# (root; cgroups): make gradescope-sim [TIER=default|1cpu|2cpu|4cpu] [SUBMISSION=dir] [TIMEOUT=s] [MEMORY_MB=n]
# [SLOWER=n: a host n times slower, the quota / n] [NEIGHBOUR=1: a CPU-hungry process per core beside it]
# [OVER=dir: its files replace the submission's, e.g. one attacking file beside the reference's others]
TIER    ?= default
TIMEOUT ?= 600
SIM_NAME = $(TIER)$(if $(MEMORY_MB),-$(MEMORY_MB)MB)$(if $(SLOWER),-slower$(SLOWER))$(if $(NEIGHBOUR),-neighbour)$(if \
           $(OVER),-$(notdir $(OVER)))
gradescope-sim: autograder
	$(PY) tools/gradescope_sim.py --tier $(TIER) --submission "$(SUBMISSION)" --timeout $(TIMEOUT) \
	    $(if $(MEMORY_MB),--memory-mb $(MEMORY_MB)) $(if $(SLOWER),--slower $(SLOWER)) $(if $(NEIGHBOUR),--neighbour) \
	    $(if $(OVER),--over "$(OVER)") --json build/sim/$(SIM_NAME).json

# Throughput and peak memory per worker of make grade-all on 12 mixed submissions, on local Dask clusters of
# 1, 2 and 4 workers (about 45 minutes on 2 cores).
bench-batch: setup
	$(PY) tools/bench_batch.py

# Grade a Gradescope export on Dask: make grade-all SUBMISSIONS=<dir> [WORKERS=n | SCHEDULER=tcp://host:8786 |
# JOBS=n (threads, no Dask)] [FORCE=1].  Default: a local cluster sized from the cores and the memory.
grade-all: setup
	@test -n "$(SUBMISSIONS)" || { echo "grade-all: set SUBMISSIONS=<unzipped Gradescope export>"; exit 2; }
	$(PY) tools/grade_all.py "$(SUBMISSIONS)" $(if $(WORKERS),--workers $(WORKERS)) \
	    $(if $(SCHEDULER),--scheduler $(SCHEDULER)) $(if $(JOBS),--jobs $(JOBS)) $(if $(FORCE),--force)

# Score changes between two grade-all CSVs: make compare OLD=<csv> NEW=<csv>
compare: $(STAMP)
	@test -n "$(OLD)" -a -n "$(NEW)" || { echo "compare: set OLD=<csv> NEW=<csv>"; exit 2; }
	$(PY) tools/compare.py "$(OLD)" "$(NEW)"

# The cohort report (one self-contained HTML file) of an earlier grade-all run:
# make report GRADES=<csv> [OLD=<csv>] [SUBMISSIONS=<export>: similarity check] [SIMILARITY=<score>]
report: $(STAMP)
	@test -n "$(GRADES)" || { echo "report: set GRADES=<csv>"; exit 2; }
	$(PY) tools/report.py "$(GRADES)" $(if $(OLD),--old "$(OLD)") $(if $(SUBMISSIONS),--submissions "$(SUBMISSIONS)") \
	    $(if $(SIMILARITY),--similarity-threshold $(SIMILARITY))

# Seeded bugs: every one must lose points, half of them in the public tests, each exactly where
# autograder/contract.toml says (its own tests, and its also).
mutants: setup
	$(PY) tools/variants.py mutants

# The mutants graded as by make mutants, then each promise's also in autograder/contract.toml rewritten
# from the tests its mutant failed (never its tests: those are written by hand).
contract-update: setup
	$(PY) tools/variants.py mutants --update

# The contract table (autograder/contract.toml): check it against the stubs, tests and mutants; print it.
contract: $(STAMP)
	$(PY) tools/contract.py --check && $(PY) tools/contract.py

# Every setting of autograder/config.toml with its description and the value in force (checked).
config: $(STAMP)
	cd autograder && ../$(PY) -m grader.config

# Alternative correct solutions: every one must get full marks.
alternatives: setup
	$(PY) tools/variants.py alternatives

# Hand-written real-style submissions (tests/real_style/): every file must get full marks.
real-style: setup
	$(PY) tools/variants.py real_style

# The accuracy tests under 10 grader seeds, on the reference and two alternatives (about 10 minutes).
flaky: setup
	$(PY) tools/flaky.py

# Every test, in TEST_JOBS parallel processes (pytest-xdist), longest first; the last line sums up the run
# (wall time, tests, grading-cache hits and misses).  NNAG_GRADING_CACHE=off grades every variant again.
TEST_JOBS ?= 3
test: setup
	$(PY) -m pytest -c tests/pytest.ini -n $(TEST_JOBS) --maxschedchunk 1 tests

clean:
	rm -rf build dist
