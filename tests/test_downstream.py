"""Other extensions can use the kernels: cimport from Cython, include from C."""

import shutil
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
from numpy.testing import assert_array_equal

import ssgs
from ssgs import kernels

PYX = """
# cython: language_level=3
import numpy as np
from libc.stddef cimport ptrdiff_t
from libc.stdint cimport int64_t
from ssgs.ckernels cimport sample_states, lpc_synthesis, SSGS_OK

def draw(double[::1] startprob, double[:, ::1] transmat, Py_ssize_t n, unsigned long long seed):
    path = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] p = path
    cdef int status
    with nogil:
        status = sample_states(startprob.shape[0], &startprob[0], &transmat[0, 0], n, seed, &p[0])
    assert status == SSGS_OK
    return path

def synth(double[::1] e, double[:, ::1] a, Py_ssize_t hop):
    y = np.empty(e.shape[0])
    state = np.zeros(a.shape[1] - 1)
    cdef double[::1] yv = y, sv = state
    cdef ptrdiff_t bad = -1
    cdef int status
    with nogil:
        status = lpc_synthesis(&e[0], e.shape[0], &a[0, 0], a.shape[0], <int>a.shape[1] - 1, hop,
                               &sv[0], &yv[0], &bad)
    assert status == SSGS_OK
    return y
"""

SETUP = """
import ssgs
from Cython.Build import cythonize
from setuptools import Extension, setup
setup(name="downstream", script_args=["build_ext", "--inplace"],
      ext_modules=cythonize([Extension("downstream", ["downstream.pyx"],
                                       include_dirs=[ssgs.get_include()])]))
"""


def test_cython_extension_cimports_the_kernels(tmp_path):
    (tmp_path / "downstream.pyx").write_text(PYX)
    (tmp_path / "setup.py").write_text(SETUP)
    build = subprocess.run([sys.executable, "setup.py"], cwd=tmp_path, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    check = textwrap.dedent("""
        import numpy as np, downstream
        from ssgs import kernels
        sp = np.array([0.2, 0.8]); tm = np.array([[0.9, 0.1], [0.3, 0.7]])
        assert (downstream.draw(sp, tm, 500, 11) == kernels.sample_states(sp, tm, 500, 11)).all()
        a = np.tile([1.0, -0.9, 0.2], (10, 1)); e = np.random.default_rng(1).normal(size=1000)
        assert (downstream.synth(e, a, 100) == kernels.lpc_synthesis(e, a, 100)[0]).all()
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True)
    # (an editable install may print its rebuild log first)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-3000:]


def test_c_headers_compile_on_their_own(tmp_path):
    source = tmp_path / "use.c"
    source.write_text(textwrap.dedent("""
        #include "ssgs_hmm.h"
        #include "ssgs_lpc.h"
        int use(const double *frames, double *a, double *k, double *err) {
            return ssgs_lpc_analysis_f64(frames, 1, 64, 4, NULL, 1, a, k, err, NULL) == SSGS_OK
                   && SSGS_KERNELS_VERSION >= 1 && SSGS_MAX_ORDER >= 32;
        }
    """))
    cc = sysconfig.get_config_var("CC").split()[0] if sysconfig.get_config_var("CC") else "cc"
    cc = shutil.which(cc) or shutil.which("cc")
    assert cc is not None, "no C compiler found"
    for std in ("-std=c99", "-std=c11"):
        run = subprocess.run([cc, std, "-Wall", "-Wextra", "-Werror", "-pedantic", "-c", str(source),
                              "-I", ssgs.get_include(), "-o", str(tmp_path / "use.o")],
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr


def test_get_include_holds_the_headers_and_the_pxd_ships():
    from pathlib import Path
    include = Path(ssgs.get_include())
    for header in ("ssgs_common.h", "ssgs_lpc.h", "ssgs_hmm.h"):
        assert (include / header).is_file()
    assert (Path(ssgs.__file__).parent / "ckernels.pxd").is_file()


def test_kernels_release_the_gil(rng):
    # four threads in the E-step at once give what each gives alone
    from concurrent.futures import ThreadPoolExecutor
    X = rng.normal(size=(20_000, 4))
    means = rng.normal(size=(6, 4))
    covars = np.stack([np.eye(4)] * 6)
    sp, tm = np.full(6, 1 / 6), np.full((6, 6), 1 / 6)
    alone = kernels.estep(X, [10_000, 10_000], sp, tm, means, covars, n_threads=1)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: kernels.estep(X, [10_000, 10_000], sp, tm, means, covars,
                                                        n_threads=1), range(4)))
    for r in results:
        assert_array_equal(r.moment2, alone.moment2)
