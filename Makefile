# Top-level entry points; the real build is CMake in build/.
BUILD    ?= build
ASANBUILD ?= build-asan
TSANBUILD ?= build-tsan
FIXTURES ?= $(BUILD)/fixtures
# The test distribution (Debian bookworm as signed RPMs); its cache is in
# $LAPIS_TESTDIST_CACHE (default /var/cache/lapis-testdist).
TESTDIST ?= $(BUILD)/testdist
JOBS     ?= $(shell nproc)
# Debian's python3 has python3-pytest; a python3 earlier on PATH (pyenv) may not.
PYTHON   ?= /usr/bin/python3

.PHONY: all deps check unit functional asan tsan fuzz demo demo-pkg bench clean testdist rpm

all: $(BUILD)/lapis

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

$(BUILD)/lapis: $(BUILD)/Makefile FORCE
	cmake --build $(BUILD) -j $(JOBS)

deps:
	./scripts/install-deps

# Everything: unit tests (cmocka via ctest) and functional tests (pytest; two
# passes, parallel then serial: tests/functional/run, LAPIS_TEST_JOBS workers).
check: deps
	$(MAKE) all
	$(MAKE) unit functional

unit: $(BUILD)/lapis
	tests/fixtures/build-repos $(FIXTURES)
	cd $(BUILD) && LAPIS_FIXTURES=$(abspath $(FIXTURES)) ctest --output-on-failure

functional: $(BUILD)/lapis
	tests/fixtures/build-repos $(FIXTURES)
	tests/fixtures/build-testdist $(TESTDIST)
	LAPIS_BIN=$(abspath $(BUILD)/lapis) LAPIS_FIXTURES=$(abspath $(FIXTURES)) \
	  LAPIS_TESTDIST=$(abspath $(TESTDIST)) PYTHON=$(PYTHON) tests/functional/run

# The test distribution for x86_64 and aarch64, lapis included (cached:
# seconds when nothing changed). Layout and rules: tests/fixtures/testdist/.
testdist:
	tests/fixtures/build-testdist $(TESTDIST)

# lapis as an RPM from this tree (unsigned; build-testdist signs its own).
rpm:
	rpmbuild -bb --nodeps --define "_sourcedir $(CURDIR)" \
	  --define "_topdir $(abspath $(BUILD))/rpmbuild" \
	  --define "_rpmdir $(abspath $(BUILD))/rpm" lapis.spec
	@ls $(BUILD)/rpm/*/lapis-*.rpm

# Sanitizer build: unit tests plus the functional suite.
asan: deps
	cmake -S . -B $(ASANBUILD) -DCMAKE_BUILD_TYPE=Debug -DLAPIS_SANITIZE=ON
	cmake --build $(ASANBUILD) -j $(JOBS)
	tests/fixtures/build-repos $(FIXTURES)
	cd $(ASANBUILD) && ASAN_OPTIONS=detect_leaks=1 LAPIS_FIXTURES=$(abspath $(FIXTURES)) \
	  ctest --output-on-failure
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 LAPIS_KILL_LOOPS=3 LAPIS_SKIP_BOOT=1 LAPIS_SKIP_REBUILD=1 \
	  LAPIS_BIN=$(abspath $(ASANBUILD)/lapis) LAPIS_FIXTURES=$(abspath $(FIXTURES)) \
	  PYTHON=$(PYTHON) tests/functional/run

# ThreadSanitizer build (the parallel metadata parse, src/pkg/mdparse.c): the
# unit tests that load metadata and the functional makecache/metadata tests
# (not the 63k-package comparison: it takes over 10 minutes under TSan).
TSAN_TESTS ?= tests/functional/test_mdparallel.py tests/functional/test_mdstream.py \
  tests/functional/test_makecache.py tests/functional/test_hostile.py
tsan: deps
	cmake -S . -B $(TSANBUILD) -DCMAKE_BUILD_TYPE=Debug -DLAPIS_TSAN=ON
	cmake --build $(TSANBUILD) -j $(JOBS)
	tests/fixtures/build-repos $(FIXTURES)
	cd $(TSANBUILD) && TSAN_OPTIONS=halt_on_error=1 LAPIS_FIXTURES=$(abspath $(FIXTURES)) \
	  ctest --output-on-failure -R 'unit_pkg_(api|cache)'
	TSAN_OPTIONS=halt_on_error=1:exitcode=66 LAPIS_MD_CHUNK=4096 \
	  LAPIS_BIN=$(abspath $(TSANBUILD)/lapis) LAPIS_FIXTURES=$(abspath $(FIXTURES)) \
	  $(PYTHON) -m pytest -q -k 'not bench_repo' $(TSAN_TESTS)

# libFuzzer harnesses (tests/fuzz), FUZZ_SECONDS each (default 10), seeded with the fixtures.
fuzz: deps
	$(MAKE) all
	tests/fixtures/build-repos $(FIXTURES)
	LAPIS_FIXTURES=$(FIXTURES) FUZZ_SECONDS=$(or $(FUZZ_SECONDS),10) tests/fuzz/run

# The main job: compose the minimal server image, run it as a container, boot it.
demo: deps
	$(MAKE) all
	./scripts/demo

# The package manager on its own: a signed demo repo, queries, an install.
demo-pkg: deps
	$(MAKE) all
	./scripts/demo-pkg

bench: deps
	$(MAKE) all
	bench/run
	bench/run-http-metadata
	bench/run-install
	bench/run-image
	bench/run-sysupdate

clean:
	rm -rf $(BUILD) $(ASANBUILD) build-fuzz

FORCE:
