/* eval/sandbox_guard.c: the Python audit-hook preamble (see sandbox_guard.h).
 * Everything the hook needs is imported before the hook is installed, so the
 * hook never triggers an import (and so never re-enters itself). */
#include "eval/sandbox_guard.h"

/* _flab_make_hook(work, hidden): the hook; shared by both runners. */
#define GUARD_DEFS \
"import sys, os\n" \
"def _flab_make_hook(work, hidden):\n" \
"    work = os.path.realpath(work)\n" \
"    hidden = [os.path.realpath(h) for h in hidden]\n" \
"    allowed_read = [os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)]\n" \
"    realpath, join, fspath, fsdecode = os.path.realpath, os.path.join, os.fspath, os.fsdecode\n" \
"    readlink, getpid = os.readlink, os.getpid\n" \
"    W = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC\n" \
"    def under(r, d):\n" \
"        return r == d or r.startswith(d.rstrip('/') + '/')\n" \
"    def resolve(p, dir_fd=None):\n" \
"        if isinstance(p, int):\n" \
"            p = readlink('/proc/self/fd/%d' % p)\n" \
"        p = fspath(p)\n" \
"        if isinstance(p, bytes):\n" \
"            p = fsdecode(p)\n" \
"        if isinstance(dir_fd, int) and dir_fd >= 0 and not p.startswith('/'):\n" \
"            p = join(readlink('/proc/self/fd/%d' % dir_fd), p)\n" \
"        return realpath(p)\n" \
"    def deny(what):\n" \
"        raise PermissionError('flab sandbox: %s blocked' % what)\n" \
"    def check_write(event, p, dir_fd=None):\n" \
"        try:\n" \
"            r = resolve(p, dir_fd)\n" \
"        except Exception:\n" \
"            deny(event)\n" \
"        if not under(r, work):\n" \
"            deny('%s outside the sample directory (%s)' % (event, r))\n" \
"    def check_read(p):\n" \
"        if not hidden:\n" \
"            return\n" \
"        try:\n" \
"            r = resolve(p)\n" \
"        except Exception:\n" \
"            return\n" \
"        if any(under(r, h) for h in hidden) and not any(under(r, a) for a in allowed_read):\n" \
"            deny('reading %s' % r)\n" \
"    PATH1 = {'os.remove', 'os.rmdir', 'os.mkdir', 'os.chmod', 'os.chown', 'os.truncate',\n" \
"             'os.utime', 'os.chflags', 'os.lchflags', 'os.mkfifo', 'os.mknod', 'os.setxattr',\n" \
"             'os.removexattr', 'shutil.rmtree', 'shutil.chown'}\n" \
"    PATH2 = {'os.rename', 'os.link', 'os.symlink', 'shutil.move', 'shutil.copyfile',\n" \
"             'shutil.copytree'}\n" \
"    BANNED = ('socket.', 'subprocess.', 'os.system', 'os.exec', 'os.posix_spawn', 'os.spawn',\n" \
"              'os.fork', 'os.forkpty', 'pty.', 'os.killpg', 'os.startfile',\n" \
"              'os.add_dll_directory', '_posixsubprocess.', 'signal.pthread_kill')\n" \
"    def hook(event, args):\n" \
"        if event == 'open':\n" \
"            path, mode, flags = args\n" \
"            writing = (isinstance(mode, str) and any(c in mode for c in 'wax+')) or \\\n" \
"                      (isinstance(flags, int) and flags & W)\n" \
"            if writing:\n" \
"                check_write('open for writing', path)\n" \
"            else:\n" \
"                check_read(path)\n" \
"        elif event in PATH1:\n" \
"            dir_fd = args[-1] if event in ('os.remove', 'os.rmdir', 'os.mkdir') else None\n" \
"            check_write(event, args[0], dir_fd if isinstance(dir_fd, int) else None)\n" \
"        elif event in PATH2:\n" \
"            if event in ('os.rename', 'os.link', 'shutil.move'):\n" \
"                check_write(event, args[0])\n" \
"            check_write(event, args[1])\n" \
"        elif event == 'os.kill':\n" \
"            if args[0] != getpid():\n" \
"                deny('kill of process %r' % (args[0],))\n" \
"        elif event.startswith(BANNED):\n" \
"            deny(event)\n" \
"    return hook\n"

/* Exec mode: python3 -I -B -c GUARD PROGRAM WORKDIR [HIDDEN...] */
const char eval_sandbox_guard_py[] = GUARD_DEFS
"_flab_prog = sys.argv[1]\n"
"_flab_hook = _flab_make_hook(sys.argv[2], sys.argv[3:])\n"
"del _flab_make_hook\n"
"with open(_flab_prog, 'rb') as _flab_f:\n"
"    _flab_code = compile(_flab_f.read(), _flab_prog, 'exec')\n"
"sys.addaudithook(_flab_hook)\n"
"del _flab_hook, _flab_f\n"
"sys.argv = [_flab_prog]\n"
"exec(_flab_code, {'__name__': '__main__', '__builtins__': __builtins__})\n";

/* Pool mode: python3 -I -B -c ZYGOTE ROOT HOOK TIMEOUT CPU AS NPROC FSIZE
 * NOFILE [HIDDEN...], fd 3 = requests ("<size>\n" + program), fd 4 =
 * replies ("READY\n", then "DONE <wait status> <timed out>\n" per sample).
 * It runs as PID 1 of its own namespaces, so kill(-1) reaches every process
 * a sample left and nothing else, and signals from inside cannot kill it.
 * It is made non-dumpable so a sample cannot ptrace it or write its memory;
 * after each sample its processes are killed and reaped and ROOT emptied.
 * A fork refused by the process limit (another job's fork bomb shares uid
 * nobody's RLIMIT_NPROC) is retried for 2 s, then fails only that sample. */
const char eval_sandbox_zygote_py[] = GUARD_DEFS
"import signal, resource, traceback, ctypes, shutil, stat, time\n"
"for _m in ('typing', 'math', 're', 'collections', 'itertools', 'functools', 'heapq',\n"
"           'bisect', 'string', 'hashlib', 'json', 'random', 'copy', 'operator', 'datetime',\n"
"           'fractions', 'decimal', 'statistics'):\n"
"    try:\n"
"        __import__(_m)\n"
"    except Exception:\n"
"        pass\n"
"def _flab_limits(cpu, mem, nproc, fsize, nofile):\n"
"    R = resource\n"
"    for res, v in ((R.RLIMIT_CPU, cpu), (R.RLIMIT_AS, mem), (R.RLIMIT_NPROC, nproc),\n"
"                   (R.RLIMIT_FSIZE, fsize), (R.RLIMIT_NOFILE, nofile), (R.RLIMIT_CORE, 0)):\n"
"        R.setrlimit(res, (v, v + 1 if res == R.RLIMIT_CPU else v))\n"
"def _flab_child(d, prog, src, hook_on, limits, hidden):\n"
"    rc = 1\n"
"    try:\n"
"        os.close(3)\n"
"        os.close(4)\n"
"        signal.signal(signal.SIGALRM, signal.SIG_DFL)\n"
"        os.chdir(d)\n"
"        os.environ['HOME'] = os.environ['TMPDIR'] = d\n"
"        if 'tempfile' in sys.modules:\n"
"            sys.modules['tempfile'].tempdir = None\n"
"        _flab_limits(*limits)\n"
"        code = compile(src, prog, 'exec')\n"
"        if hook_on:\n"
"            sys.addaudithook(_flab_make_hook(d, hidden))\n"
"        sys.argv = [prog]\n"
"        try:\n"
"            exec(code, {'__name__': '__main__', '__builtins__': __builtins__})\n"
"            rc = 0\n"
"        except SystemExit as e:\n"
"            if e.code is None:\n"
"                rc = 0\n"
"            elif isinstance(e.code, int):\n"
"                rc = e.code & 0xff\n"
"            else:\n"
"                print(e.code, file=sys.stderr)\n"
"    except BaseException:\n"
"        try:\n"
"            traceback.print_exc()\n"
"        except BaseException:\n"
"            pass\n"
"    finally:\n"
"        try:\n"
"            sys.stdout.flush()\n"
"            sys.stderr.flush()\n"
"        except BaseException:\n"
"            pass\n"
"        os._exit(rc)\n"
"def _flab_empty(root):\n"
"    def fix(func, path, exc):\n"
"        try:\n"
"            os.chmod(os.path.dirname(path), 0o700)\n"
"            os.chmod(path, 0o700)\n"
"            func(path)\n"
"        except OSError:\n"
"            pass\n"
"    for name in os.listdir(root):\n"
"        p = os.path.join(root, name)\n"
"        if os.path.isdir(p) and not os.path.islink(p):\n"
"            shutil.rmtree(p, onerror=fix)\n"
"        else:\n"
"            try:\n"
"                os.unlink(p)\n"
"            except OSError:\n"
"                pass\n"
"def _flab_zygote():\n"
"    root, hook_on, timeout = sys.argv[1], sys.argv[2] == '1', float(sys.argv[3])\n"
"    limits = [int(x) for x in sys.argv[4:9]]\n"
"    hidden = sys.argv[9:]\n"
"    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)\n"
"    ctl = os.fdopen(3, 'rb')\n"
"    os.write(4, b'READY\\n')\n"
"    n = 0\n"
"    while True:\n"
"        header = ctl.readline()\n"
"        if not header:\n"
"            os._exit(0)\n"
"        src = ctl.read(int(header))\n"
"        n += 1\n"
"        d = os.path.join(root, 's%d' % n)\n"
"        os.mkdir(d, 0o700)\n"
"        prog = os.path.join(d, 'program.py')\n"
"        with open(prog, 'wb') as f:\n"
"            f.write(src)\n"
"        pid = -1\n"
"        for _ in range(200):\n"
"            try:\n"
"                pid = os.fork()\n"
"                break\n"
"            except BlockingIOError:\n"
"                time.sleep(0.01)\n"
"        if pid < 0:\n"
"            os.write(2, b'flab sandbox: cannot fork: process limit reached\\n')\n"
"            _flab_empty(root)\n"
"            os.write(4, b'DONE 256 0\\n')\n"
"            continue\n"
"        if pid == 0:\n"
"            _flab_child(d, prog, src, hook_on, limits, hidden)\n"
"        late = []\n"
"        def on_alarm(signum, frame):\n"
"            late.append(1)\n"
"            try:\n"
"                os.kill(pid, signal.SIGKILL)\n"
"            except OSError:\n"
"                pass\n"
"        signal.signal(signal.SIGALRM, on_alarm)\n"
"        signal.setitimer(signal.ITIMER_REAL, timeout)\n"
"        _, status = os.waitpid(pid, 0)\n"
"        signal.setitimer(signal.ITIMER_REAL, 0)\n"
"        while True:\n"
"            try:\n"
"                os.kill(-1, signal.SIGKILL)\n"
"            except OSError:\n"
"                pass\n"
"            try:\n"
"                os.waitpid(-1, 0)\n"
"            except ChildProcessError:\n"
"                break\n"
"        _flab_empty(root)\n"
"        os.write(4, b'DONE %d %d\\n' % (status, 1 if late else 0))\n"
"_flab_zygote()\n";
