#!/usr/bin/env python3
"""Turn Debian's real package index into an rpm-md repository (metadata only).

Usage: bench/gen-debian-repo.py OUTDIR [PACKAGES_FILE...]

Reads /var/lib/apt/lists/*_Packages.lz4 (or the given files; .lz4 files are
read through `apt-helper cat-file`, others as plain text), keeps the highest
version of every package name, and writes

    OUTDIR/repodata/{primary,filelists,other}.xml.gz
    OUTDIR/repodata/repomd.xml
    OUTDIR/bench.repo

No RPM files are produced: the repository is only good for metadata work
(makecache, repoquery, depsolving with --assumeno).

Mapping (Debian -> rpm):
  Architecture amd64 -> x86_64, all -> noarch
  [epoch:]upstream[-debrev] -> epoch / version / release
        release = debrev or "0"; in upstream "-" becomes "^", ":" "_"
  Provides                    -> Provides (plus the usual self-provide)
  Depends, Pre-Depends        -> Requires (Pre-Depends get pre="1")
  Conflicts, Breaks           -> Conflicts
  Recommends                  -> Recommends
  Suggests                    -> Suggests
  a | b (>= 1)                -> rich dep "(a or b >= 1)"
  << >> <= >= = (and the obsolete < >) -> LT GT LE GE EQ (LE GE)
  arch qualifiers (:any, :amd64, ...) are dropped
Each package gets one file, /usr/share/doc/<name>/copyright (filelists only).

The output is deterministic: packages are sorted by name, gzip headers carry
no time stamp, and the repo timestamp is SOURCE_DATE_EPOCH if set, else the
newest mtime of the input files.
"""

import glob
import gzip
import hashlib
import io
import os
import re
import subprocess
import sys
import time

APT_HELPER = "/usr/lib/apt/apt-helper"
DEFAULT_GLOB = "/var/lib/apt/lists/*_Packages.lz4"

ARCH_MAP = {"amd64": "x86_64", "all": "noarch"}
REL_MAP = {
    "<<": "LT", ">>": "GT", "<=": "LE", ">=": "GE", "=": "EQ",
    "<": "LE", ">": "GE",       # obsolete dpkg spellings mean <= and >=
}
NATIVE_QUALIFIERS = {"any", "amd64", "all", "native"}
# Version given to an unversioned Provides whose name is the target of a
# versioned Conflicts/Breaks (see below).
VIRTUAL_EVR = ("999", "0", "0")
RICH_OP = {"LT": "<", "GT": ">", "LE": "<=", "GE": ">=", "EQ": "="}

# ---------------------------------------------------------------------------
# Debian version comparison (dpkg's verrevcmp), used to pick the newest
# version of a package name across main, updates and security.


def _order(c):
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _verrevcmp(a, b):
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        first_diff = 0
        while (i < la and not a[i].isdigit()) or (j < lb and not b[j].isdigit()):
            ac = _order(a[i]) if i < la else 0
            bc = _order(b[j]) if j < lb else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < la and a[i] == "0":
            i += 1
        while j < lb and b[j] == "0":
            j += 1
        while i < la and a[i].isdigit() and j < lb and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < la and a[i].isdigit():
            return 1
        if j < lb and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def split_debver(v):
    """'[epoch:]upstream[-rev]' -> (epoch str, upstream, rev or '')."""
    epoch = "0"
    if ":" in v:
        e, rest = v.split(":", 1)
        if e.isdigit():
            epoch, v = e, rest
    if "-" in v:
        up, rev = v.rsplit("-", 1)
    else:
        up, rev = v, ""
    return epoch, up, rev


def debver_cmp(a, b):
    ea, ua, ra = split_debver(a)
    eb, ub, rb = split_debver(b)
    if int(ea) != int(eb):
        return int(ea) - int(eb)
    c = _verrevcmp(ua, ub)
    if c:
        return c
    return _verrevcmp(ra, rb)


_SEP_TILDE = re.compile(r"([.+])~+")


def _rpmify(s):
    # rpm drops separators, so "4.0.0+~4.0.1" would compare like
    # "4.0.0~4.0.1" (older than 4.0.0) while dpkg sorts it after 4.0.0:
    # drop tildes that directly follow a separator.
    s = _SEP_TILDE.sub(r"\1", s)
    # rpm forbids '-' (and ':') in a version. dpkg sorts '-' after the end
    # of the string and before '.', exactly like rpm's caret ("12^2021" is
    # newer than "12" but older than "12.2"), so "12-20211113" -> "12^20211113".
    return s.replace("-", "^").replace(":", "_")


def rpm_evr(debver, release_default):
    """Debian version -> (epoch, version, release) for rpm.

    release_default is "0" for package versions and versioned relations:
    dpkg treats a missing revision like "0", whereas rpm would ignore the
    release altogether (so "libc6 (>> 2.36)" would not match 2.36-9).
    None leaves the release out (= "any release")."""
    epoch, up, rev = split_debver(debver)
    rel = _rpmify(rev) if rev else release_default
    return epoch, _rpmify(up), rel


_UPPER_JUNK = re.compile(r"^(.*[A-Za-z0-9])([.+~-]*)$")


def dep_evr(flag, debver):
    """Version of a versioned relation -> (rpm flag, evr tuple)."""
    if flag in ("LT", "LE"):
        # Upper-bound idioms: "<< 2.39.5-.", "<< 1.3.1.", "<< 1.2+",
        # "<< 1.0.~", "<< 2.14.12-z" all mean "any revision of the base
        # version, nothing newer". rpm ignores trailing separators, so
        # express that as "<= base" (with no release unless base has one).
        m = _UPPER_JUNK.match(debver)
        if m and m.group(2) and not re.fullmatch(r"-?~*", m.group(2)):
            base = m.group(1)
            if "-" in base and base[-1].isalpha() and base[-1] != "z":
                # "<< 0.1-5+b+~" (binNMUs of 0.1-5): "< 0.1-5+c"
                return "LT", rpm_evr(base[:-1] + chr(ord(base[-1]) + 1), None)
            return "LE", rpm_evr(base, None)
        epoch, up, rev = split_debver(debver)
        if rev and rev.isalpha():
            return "LE", rpm_evr(debver.rsplit("-", 1)[0], None)
    return flag, rpm_evr(debver, "0")


def evr_str(epoch, ver, rel):
    s = ver
    if epoch and epoch != "0":
        s = epoch + ":" + s
    if rel:
        s = s + "-" + rel
    return s


# ---------------------------------------------------------------------------
# Input


def read_index(path):
    if path.endswith(".lz4"):
        return subprocess.run([APT_HELPER, "cat-file", path], check=True,
                              stdout=subprocess.PIPE).stdout.decode("utf-8", "replace")
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


WANTED = {"Package", "Version", "Architecture", "Provides", "Depends",
          "Pre-Depends", "Conflicts", "Breaks", "Recommends", "Suggests",
          "Description", "Homepage", "Maintainer", "Section", "Source",
          "Installed-Size", "Size", "Essential"}


def parse_stanzas(text):
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields = {}
        key = None
        for line in block.split("\n"):
            if not line:
                continue
            if line[0] in " \t":
                # continuation: only multi-line relation fields matter
                if key in WANTED and key != "Description":
                    fields[key] += " " + line.strip()
                continue
            k, _, v = line.partition(":")
            key = k
            if k in WANTED:
                fields[k] = v.strip()
        if "Package" in fields and "Version" in fields:
            yield fields


# ---------------------------------------------------------------------------
# Relations

_REL_RE = re.compile(r"^\s*([^\s(:]+)(?::([a-z0-9-]+))?\s*(?:\(\s*(<<|>>|<=|>=|=|<|>)\s*([^)\s]+)\s*\))?\s*(?:\[[^\]]*\])?\s*(?:<[^>]*>\s*)*$")


def parse_atom(s):
    m = _REL_RE.match(s)
    if not m:
        raise ValueError("cannot parse relation %r" % s)
    name, qual, op, ver = m.group(1), m.group(2), m.group(3), m.group(4)
    if qual and qual not in NATIVE_QUALIFIERS:
        # "gcc:arm64", "libc6-x32:i386": a package of another architecture,
        # which a single-arch (amd64) repository cannot contain.
        name = "%s:%s" % (name, qual)
        return (name, None, None), True
    if op is None:
        return (name, None, None), False
    flag, evr = dep_evr(REL_MAP[op], ver)
    return (name, flag, evr), False


def parse_relations(value, keep_foreign):
    """'a, b | c (>= 1)' -> list of alternative lists of atoms.

    Alternatives naming a foreign architecture are dropped. A group made only
    of those is dropped too, unless keep_foreign (Depends: it then stays as
    an unsatisfiable "name:arch" requirement, as it is on amd64)."""
    out = []
    if not value:
        return out
    for group in value.split(","):
        group = group.strip()
        if not group:
            continue
        atoms = [parse_atom(a) for a in group.split("|")]
        alts = [a for a, foreign in atoms if not foreign]
        if not alts:
            if not keep_foreign:
                continue
            alts = [atoms[0][0]]
        out.append(alts)
    return out


def rich_atom(atom):
    name, flag, evr = atom
    if flag is None:
        return name
    return "%s %s %s" % (name, RICH_OP[flag], evr_str(*evr))


# ---------------------------------------------------------------------------
# XML helpers

_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def esc(s):
    s = _BAD_XML.sub("", s)
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def entry_xml(atom_or_rich, pre=False):
    if isinstance(atom_or_rich, str):
        s = '<rpm:entry name="%s"' % esc(atom_or_rich)
    else:
        name, flag, evr = atom_or_rich
        s = '<rpm:entry name="%s"' % esc(name)
        if flag is not None:
            e, v, r = evr
            s += ' flags="%s" epoch="%s" ver="%s"' % (flag, esc(e), esc(v))
            if r:
                s += ' rel="%s"' % esc(r)
    if pre:
        s += ' pre="1"'
    return s + "/>"


def dep_items(groups):
    """Alternative groups -> entries (atom tuples or rich-dep strings)."""
    items = []
    for alts in groups:
        # drop repeated alternatives ("a | a") keeping order
        seen = []
        for a in alts:
            if a not in seen:
                seen.append(a)
        if len(seen) == 1:
            items.append(seen[0])
        else:
            items.append("(" + " or ".join(rich_atom(a) for a in seen) + ")")
    return items


def dedup(items):
    seen = set()
    out = []
    for it in items:
        if it not in seen:
            seen.add(it)
            out.append(it)
    return out


# ---------------------------------------------------------------------------


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write(__doc__)
        return 2
    outdir = os.path.abspath(argv[1])
    inputs = argv[2:] or sorted(glob.glob(DEFAULT_GLOB))
    if not inputs:
        sys.stderr.write("gen-debian-repo: no input (%s); run apt-get update\n" % DEFAULT_GLOB)
        return 1

    t0 = time.time()
    if os.environ.get("SOURCE_DATE_EPOCH"):
        stamp = int(os.environ["SOURCE_DATE_EPOCH"])
    else:
        stamp = int(max(os.stat(p).st_mtime for p in inputs))

    best = {}
    nstanzas = 0
    for path in inputs:
        for st in parse_stanzas(read_index(path)):
            nstanzas += 1
            if st.get("Architecture") not in ARCH_MAP:
                continue
            name = st["Package"]
            cur = best.get(name)
            if cur is None or debver_cmp(st["Version"], cur["Version"]) > 0:
                best[name] = st

    names = sorted(best)
    primary, filelists, other = [], [], []
    n = len(names)
    primary.append('<?xml version="1.0" encoding="UTF-8"?>\n'
                   '<metadata xmlns="http://linux.duke.edu/metadata/common" '
                   'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="%d">\n' % n)
    filelists.append('<?xml version="1.0" encoding="UTF-8"?>\n'
                     '<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="%d">\n' % n)
    other.append('<?xml version="1.0" encoding="UTF-8"?>\n'
                 '<otherdata xmlns="http://linux.duke.edu/metadata/other" packages="%d">\n' % n)

    # Pass 1: parse every relation.
    rels = {}
    vconf_names = set()
    for name in names:
        st = best[name]
        provs = [a for alts in parse_relations(st.get("Provides", ""), False)
                 for a in alts]
        confl = (parse_relations(st.get("Conflicts", ""), False) +
                 parse_relations(st.get("Breaks", ""), False))
        for alts in confl:
            for cname, cflag, _ in alts:
                if cflag is not None:
                    vconf_names.add(cname)
        rels[name] = (
            provs,
            dep_items(parse_relations(st.get("Depends", ""), True)),
            dep_items(parse_relations(st.get("Pre-Depends", ""), True)),
            # Conflicts never carry alternatives in Debian
            [a for alts in confl for a in alts],
            dep_items(parse_relations(st.get("Recommends", ""), False)),
            dep_items(parse_relations(st.get("Suggests", ""), False)),
        )

    # Pass 2: write.
    nrich = nvirt = 0
    for name in names:
        st = best[name]
        arch = ARCH_MAP[st["Architecture"]]
        e, v, r = rpm_evr(st["Version"], "0")
        nevra = "%s-%s:%s-%s.%s" % (name, e, v, r, arch)
        pkgid = hashlib.sha256(nevra.encode()).hexdigest()
        ename = esc(name)
        verxml = '<version epoch="%s" ver="%s" rel="%s"/>' % (e, esc(v), esc(r))
        summary = esc(st.get("Description", name))
        try:
            isize = int(st.get("Installed-Size", "0")) * 1024
        except ValueError:
            isize = 0
        try:
            psize = int(st.get("Size", "0"))
        except ValueError:
            psize = 0
        src = st.get("Source", name)
        m = re.match(r"^(\S+)(?:\s*\((\S+)\))?", src)
        srcname = m.group(1)
        sv, sr = rpm_evr(m.group(2) or st["Version"], "0")[1:]

        provs, requires, prereq, conflicts, recommends, suggests = rels[name]
        provides = [(name, "EQ", (e, v, r))]
        for pname, pflag, pevr in provs:
            # dpkg: an unversioned Provides never matches a versioned
            # relation; rpm: it matches every version. That turns e.g.
            # "perl-base Breaks: perl-modules (<< 5.36.0~)" into a conflict
            # with perl-modules-5.36 (Provides: perl-modules). Versioned
            # Conflicts/Breaks are upper bounds ("<<", "<="; one ">=" in the
            # whole archive), so give such provides a version above all.
            if pflag is None and pname == name:
                continue        # the versioned self-provide covers it
            if pflag is None and pname in vconf_names:
                pflag, pevr = "EQ", VIRTUAL_EVR
                nvirt += 1
            provides.append((pname, pflag, pevr))
        for lst in (requires, prereq, recommends, suggests):
            nrich += sum(1 for x in lst if isinstance(x, str))

        p = []
        p.append('<package type="rpm">\n'
                 '  <name>%s</name>\n'
                 '  <arch>%s</arch>\n'
                 '  %s\n'
                 '  <checksum type="sha256" pkgid="YES">%s</checksum>\n'
                 '  <summary>%s</summary>\n'
                 '  <description>%s</description>\n'
                 '  <packager>%s</packager>\n'
                 '  <url>%s</url>\n'
                 '  <time file="%d" build="%d"/>\n'
                 '  <size package="%d" installed="%d" archive="%d"/>\n'
                 '  <location href="Packages/%s-%s-%s.%s.rpm"/>\n'
                 '  <format>\n'
                 '    <rpm:license>Debian</rpm:license>\n'
                 '    <rpm:vendor>Debian</rpm:vendor>\n'
                 '    <rpm:group>%s</rpm:group>\n'
                 '    <rpm:buildhost>debian</rpm:buildhost>\n'
                 '    <rpm:sourcerpm>%s-%s-%s.src.rpm</rpm:sourcerpm>\n'
                 '    <rpm:header-range start="4504" end="%d"/>\n'
                 % (ename, arch, verxml, pkgid, summary, summary,
                    esc(st.get("Maintainer", "")), esc(st.get("Homepage", "")),
                    stamp, stamp, psize, isize, isize,
                    ename, esc(v), esc(r), arch,
                    esc(st.get("Section", "")), esc(srcname), esc(sv), esc(sr),
                    4504 + 2048))

        def block(tag, items, pre=False):
            if not items:
                return
            p.append('    <rpm:%s>\n' % tag)
            for it in items:
                p.append('      %s\n' % entry_xml(it, pre))
            p.append('    </rpm:%s>\n' % tag)

        block("provides", dedup(provides))
        if prereq or requires:
            p.append('    <rpm:requires>\n')
            pre_set = set(prereq)
            for it in dedup(prereq):
                p.append('      %s\n' % entry_xml(it, True))
            for it in dedup(requires):
                if it not in pre_set:
                    p.append('      %s\n' % entry_xml(it))
            p.append('    </rpm:requires>\n')
        block("conflicts", dedup(conflicts))
        block("suggests", dedup(suggests))
        block("recommends", dedup(recommends))
        p.append('  </format>\n</package>\n')
        primary.append("".join(p))

        filelists.append('<package pkgid="%s" name="%s" arch="%s">\n'
                         '  %s\n'
                         '  <file>/usr/share/doc/%s/copyright</file>\n'
                         '</package>\n' % (pkgid, ename, arch, verxml, ename))
        other.append('<package pkgid="%s" name="%s" arch="%s">\n'
                     '  %s\n'
                     '</package>\n' % (pkgid, ename, arch, verxml))

    primary.append("</metadata>\n")
    filelists.append("</filelists>\n")
    other.append("</otherdata>\n")

    repodata = os.path.join(outdir, "repodata")
    os.makedirs(repodata, exist_ok=True)
    for f in os.listdir(repodata):
        os.unlink(os.path.join(repodata, f))

    data = []
    for typ, parts in (("primary", primary), ("filelists", filelists), ("other", other)):
        raw = "".join(parts).encode("utf-8")
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0,
                           compresslevel=6) as g:
            g.write(raw)
        comp = buf.getvalue()
        fname = "%s.xml.gz" % typ
        with open(os.path.join(repodata, fname), "wb") as f:
            f.write(comp)
        data.append((typ, fname, hashlib.sha256(comp).hexdigest(), len(comp),
                     hashlib.sha256(raw).hexdigest(), len(raw)))

    repomd = ['<?xml version="1.0" encoding="UTF-8"?>\n'
              '<repomd xmlns="http://linux.duke.edu/metadata/repo" '
              'xmlns:rpm="http://linux.duke.edu/metadata/rpm">\n'
              '  <revision>%d</revision>\n' % stamp]
    for typ, fname, csum, size, ocsum, osize in data:
        repomd.append('  <data type="%s">\n'
                      '    <checksum type="sha256">%s</checksum>\n'
                      '    <open-checksum type="sha256">%s</open-checksum>\n'
                      '    <location href="repodata/%s"/>\n'
                      '    <timestamp>%d</timestamp>\n'
                      '    <size>%d</size>\n'
                      '    <open-size>%d</open-size>\n'
                      '  </data>\n' % (typ, csum, ocsum, fname, stamp, size, osize))
    repomd.append('</repomd>\n')
    tmp = os.path.join(repodata, "repomd.xml.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(repomd))
    os.rename(tmp, os.path.join(repodata, "repomd.xml"))

    with open(os.path.join(outdir, "bench.repo"), "w", encoding="utf-8") as f:
        f.write("[debian]\n"
                "name=Debian 12 package index as rpm-md (Lapis benchmark)\n"
                "baseurl=file://%s\n"
                "enabled=1\n"
                "gpgcheck=0\n"
                "repo_gpgcheck=0\n" % outdir)

    prim = data[0]
    sys.stderr.write("gen-debian-repo: %d stanzas -> %d packages (%d rich deps, "
                     "%d versioned virtual provides), "
                     "primary.xml %.1f MB (%.1f MB gz), %.1fs -> %s\n"
                     % (nstanzas, n, nrich, nvirt, prim[5] / 1e6, prim[3] / 1e6,
                        time.time() - t0, outdir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
