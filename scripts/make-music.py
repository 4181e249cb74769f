#!/usr/bin/env python3
"""Makes assets/music/*.wav: six synthesised hold-music fixtures (30 s each, 8 kHz mono G.711 mu-law
WAV) for testing that the music detector does not take music for speech.

Each piece is our own composition, generated deterministically here (fixed seeds) as a Standard MIDI
File, rendered with FluidSynth and the FluidR3_GM SoundFont (MIT licence; Debian package
fluid-soundfont-gm), then downmixed to mono, low-pass filtered and decimated to 8 kHz, normalised to
about -20 dBFS RMS over the non-silent part, trimmed to exactly 30.0 s and mu-law encoded.

Needs: apt-get install -y fluidsynth fluid-soundfont-gm. Python 3.11 standard library only.
Run from anywhere:  python3 scripts/make-music.py
"""
import array
import math
import operator
import os
import random
import subprocess
import sys
import tempfile

SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
RENDER_RATE = 32000          # FluidSynth renders here; we filter and decimate by 4 to 8 kHz
RATE = 8000
SECONDS = 30.0
TARGET_DBFS = -20.0          # RMS over the non-silent 10 ms blocks
PEAK_CEILING = 0.97          # linear, about -0.26 dBFS, below mu-law's largest code (32124/32768)
TPQ = 480                    # MIDI ticks per quarter note
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "assets", "music")

DRUMS = 9                    # GM percussion channel (channel 10)
KICK, SNARE, CLAP, HAT_CLOSED, HAT_PEDAL, HAT_OPEN, RIDE, CRASH = 36, 38, 39, 42, 44, 46, 51, 49

MAJOR = [0, 2, 4, 5, 7, 9, 11]
MINOR = [0, 2, 3, 5, 7, 8, 10]
DORIAN = [0, 2, 3, 5, 7, 9, 10]
MIXOLYDIAN = [0, 2, 4, 5, 7, 9, 10]


# --------------------------------------------------------------------------------------------- MIDI

def varlen(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


class Song:
    """A single-track (format 0) MIDI song with times in beats (quarter notes)."""

    def __init__(self, bpm):
        self.bpm = bpm
        self.beats = SECONDS * bpm / 60.0
        self.notes = []          # (start, end, ch, pitch, vel)
        self.ctrl = []           # (beat, seq, bytes)

    def tick(self, beat):
        return int(round(beat * TPQ))

    def program(self, ch, prog, volume=100, reverb=40, chorus=0, pan=64):
        for data in (bytes([0xC0 | ch, prog]), bytes([0xB0 | ch, 7, volume]),
                     bytes([0xB0 | ch, 91, reverb]), bytes([0xB0 | ch, 93, chorus]),
                     bytes([0xB0 | ch, 10, pan])):
            self.ctrl.append((0.0, len(self.ctrl), data))

    def cc(self, beat, ch, num, val):
        self.ctrl.append((beat, len(self.ctrl), bytes([0xB0 | ch, num, val])))

    def note(self, start, dur, ch, pitch, vel):
        if start >= self.beats or dur <= 0:
            return
        pitch = max(0, min(127, int(pitch)))
        vel = max(1, min(127, int(vel)))
        self.notes.append((start, start + dur, ch, pitch, vel))

    def midi(self):
        # A repeated (channel, pitch) must not be cut by the previous note's note-off.
        notes = sorted(self.notes, key=lambda n: (n[2], n[3], n[0], n[1]))
        fixed = []
        for i, (s, e, ch, p, v) in enumerate(notes):
            if i + 1 < len(notes) and notes[i + 1][2:4] == (ch, p) and notes[i + 1][0] < e:
                e = notes[i + 1][0]
            if self.tick(e) > self.tick(s):
                fixed.append((s, e, ch, p, v))
        ev = []                  # (tick, priority, seq, bytes): controls, then offs, then ons
        for beat, seq, data in self.ctrl:
            ev.append((self.tick(beat), 0, seq, data))
        for seq, (s, e, ch, p, v) in enumerate(fixed):
            ev.append((self.tick(e), 1, seq, bytes([0x80 | ch, p, 0])))
            ev.append((self.tick(s), 2, seq, bytes([0x90 | ch, p, v])))
        ev.sort()
        usec = int(round(60_000_000 / self.bpm))
        body = bytearray(b"\x00\xff\x51\x03" + usec.to_bytes(3, "big"))
        body += b"\x00\xff\x58\x04\x04\x02\x18\x08"            # 4/4
        last = 0
        for t, _, _, data in ev:
            body += varlen(t - last) + data
            last = t
        end = max(last, self.tick(self.beats + 2))              # room for release tails
        body += varlen(end - last) + b"\xff\x2f\x00"
        return (b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
                + TPQ.to_bytes(2, "big") + b"MTrk" + len(body).to_bytes(4, "big") + bytes(body))


# ---------------------------------------------------------------------------------- composition

def scale_pitches(key, mode, lo, hi):
    return [p for p in range(lo, hi + 1) if (p - key) % 12 in mode]


def chord(root, kind, octave_base):
    """Pitches of a chord on MIDI root (any octave), placed from octave_base upwards."""
    ints = {"maj": [0, 4, 7], "min": [0, 3, 7], "7": [0, 4, 7, 10], "m7": [0, 3, 7, 10],
            "maj7": [0, 4, 7, 11], "sus4": [0, 5, 7], "dim": [0, 3, 6]}[kind]
    r = octave_base + (root - octave_base) % 12
    return [r + i for i in ints]


def melody(song, rng, ch, pitches, t0, t1, durs, vel=(60, 95), rest=0.1, chord_at=None,
           swing=False, start=None, gaps=()):
    """Random walk in a scale from beat t0 to t1. durs: (duration, weight) pairs in beats.
    chord_at(beat) -> pitch classes to snap to on downbeats. gaps: (a, b) beat ranges kept empty."""
    i = pitches.index(start) if start in pitches else len(pitches) // 2
    t = t0
    while t < t1 - 1e-9:
        d = rng.choices([d for d, _ in durs], [w for _, w in durs])[0]
        d = min(d, t1 - t)
        in_gap = next((g for g in gaps if g[0] - 1e-9 <= t < g[1]), None)
        if in_gap:
            t = in_gap[1]
            continue
        for a, b in gaps:
            if t < a < t + d:
                d = a - t
        step = rng.choices([-3, -2, -1, 0, 1, 2, 3, 4], [1, 4, 8, 2, 8, 4, 1, 1])[0]
        i += step
        if i < 0 or i >= len(pitches):
            i -= 2 * step
            i = max(0, min(len(pitches) - 1, i))
        if chord_at and abs(t - round(t)) < 1e-9 and rng.random() < 0.6:
            pcs = chord_at(t)
            cands = [j for j in range(len(pitches)) if pitches[j] % 12 in pcs]
            if cands:
                i = min(cands, key=lambda j: (abs(j - i), j))
        on = t
        if swing:
            frac = t - math.floor(t)
            if abs(frac - 0.5) < 1e-9:
                on = math.floor(t) + 2 / 3
        if rng.random() >= rest:
            length = d * rng.choice([0.85, 0.95, 1.0]) - (on - t)
            song.note(on, length, ch, pitches[i], rng.randint(*vel))
        t += d


def piano_piece(seed):
    rng = random.Random(seed)
    s = Song(70)
    s.program(0, 0, volume=110, reverb=25)                    # Acoustic Grand Piano
    # I - vi - IV - V - I6 - ii - V7 - I ... in C major, one chord per bar.
    prog = [(60, "maj"), (57, "min"), (53, "maj"), (55, "maj"), (64, "min"), (53, "maj"),
            (62, "min"), (55, "7"), (60, "maj")]
    gap = (16.0, 18.5)                                         # fermata: ~2.1 s, >= 1.5 s near silence
    bar_starts = [0, 4, 8, 12, 18.5, 22.5, 26.5, 30.5, 34.5]

    def chord_at(b):
        k = max(j for j, st in enumerate(bar_starts) if st <= b + 1e-9)
        r, kind = prog[k]
        return {p % 12 for p in chord(r, kind, 48)}

    for k, st in enumerate(bar_starts):
        r, kind = prog[k]
        c = chord(r, kind, 48)
        bass = c[0] - 12
        arp = [bass, c[0], c[1], c[2], c[0] + 12, c[2], c[1], c[0]]
        end = gap[0] if st < gap[0] else s.beats
        s.cc(st + 0.02, 0, 64, 127)                            # sustain pedal per bar
        s.cc(min(st + 4, end) - 0.05, 0, 64, 0)
        for j, p in enumerate(arp):
            b = st + j * 0.5
            if b >= end:
                break
            s.note(b, min(1.5, end - b - 0.05), 0, p, rng.randint(45, 70) + (12 if j == 0 else 0))
    mel = scale_pitches(60, MAJOR, 67, 88)
    melody(s, rng, 0, mel, 0.0, s.beats, [(0.5, 3), (1, 4), (1.5, 2), (2, 2)], vel=(70, 100),
           rest=0.08, chord_at=chord_at, start=76, gaps=[gap])
    # the last bar before the fermata ends on a held tonic chord
    for p in (48, 55, 64, 72):
        s.note(12.0, 3.8, 0, p, 72)
    return s


def synthpop_piece(seed):
    rng = random.Random(seed)
    s = Song(120)
    s.program(0, 81, volume=88, reverb=30, chorus=30, pan=70)  # Lead 2 (sawtooth)
    s.program(1, 38, volume=105, reverb=10)                    # Synth Bass 1
    s.program(DRUMS, 0, volume=100, reverb=20)                 # Standard kit
    loop = [(57, "min"), (53, "maj"), (60, "maj"), (55, "maj")]   # Am F C G

    def chord_at(b):
        r, kind = loop[int(b // 4) % 4]
        return {p % 12 for p in chord(r, kind, 48)}

    nbars = int(math.ceil(s.beats / 4))
    for bar in range(nbars):
        r, kind = loop[bar % 4]
        root = 33 + (r - 33) % 12
        for e in range(8):
            b = bar * 4 + e * 0.5
            p = root + (12 if e in (3, 7) and rng.random() < 0.5 else 0)
            s.note(b, 0.4, 1, p, rng.randint(85, 110) if e % 2 == 0 else rng.randint(65, 85))
        for q in range(4):
            b = bar * 4 + q
            if q in (0, 2):
                s.note(b, 0.25, DRUMS, KICK, rng.randint(105, 120))
            if q == 2 and rng.random() < 0.4:
                s.note(b + 0.5, 0.25, DRUMS, KICK, rng.randint(80, 95))
            if q in (1, 3):
                s.note(b, 0.25, DRUMS, SNARE, rng.randint(95, 115))
            for h in (0, 0.5):
                s.note(b + h, 0.2, DRUMS, HAT_CLOSED, rng.randint(60, 85) + (10 if h == 0 else 0))
        if bar % 4 == 0:
            s.note(bar * 4, 1.0, DRUMS, CRASH, 90)
    mel = scale_pitches(57, MINOR, 69, 88)
    melody(s, rng, 0, mel, 0.0, s.beats, [(0.5, 5), (1, 4), (1.5, 2), (2, 1)], vel=(75, 105),
           rest=0.15, chord_at=chord_at, start=76)
    return s


def strings_piece(seed):
    rng = random.Random(seed)
    s = Song(60)
    s.program(0, 48, volume=95, reverb=60, pan=54)             # String Ensemble 1
    s.program(1, 40, volume=112, reverb=50, pan=74)            # Violin
    s.program(2, 42, volume=95, reverb=50, pan=64)             # Cello
    prog = [(62, "maj"), (59, "min"), (55, "maj"), (57, "maj"), (66, "min"), (55, "maj"),
            (52, "min"), (57, "7")]                            # D Bm G A F#m G Em A7

    def chord_at(b):
        r, kind = prog[int(b // 4) % len(prog)]
        return {p % 12 for p in chord(r, kind, 48)}

    for k in range(int(math.ceil(s.beats / 4))):
        r, kind = prog[k % len(prog)]
        c = chord(r, kind, 55)
        for half in (0, 2):                                   # two 2-beat swells per chord
            b = k * 4 + half
            for p in c:
                s.note(b, 2.0, 0, p, rng.randint(55, 75))
        s.note(k * 4, 4.0, 2, chord(r, kind, 36)[0], rng.randint(60, 80))
    mel = scale_pitches(62, MAJOR, 69, 91)
    melody(s, rng, 1, mel, 0.0, s.beats, [(0.5, 2), (1, 5), (1.5, 3), (2, 4)], vel=(70, 105),
           rest=0.05, chord_at=chord_at, start=78)
    return s


def jazz_piece(seed):
    rng = random.Random(seed)
    s = Song(140)
    s.program(0, 32, volume=115, reverb=20, pan=56)            # Acoustic Bass
    s.program(1, 0, volume=80, reverb=25, pan=44)              # Acoustic Grand Piano (comping)
    s.program(2, 11, volume=110, reverb=35, pan=84)            # Vibraphone
    s.program(DRUMS, 32, volume=85, reverb=25)                 # Jazz kit
    # ii-V-I-vi in Bb, then ii-V to Eb and back
    prog = [(60, "m7"), (65, "7"), (58, "maj7"), (55, "7"), (60, "m7"), (65, "7"), (63, "maj7"),
            (62, "7")]

    def chord_at(b):
        r, kind = prog[int(b // 4) % len(prog)]
        return {p % 12 for p in chord(r, kind, 48)}

    nbars = int(math.ceil(s.beats / 4))
    bass_scale = scale_pitches(58, MIXOLYDIAN, 28, 55)
    for bar in range(nbars):
        r, kind = prog[bar % len(prog)]
        nr, _ = prog[(bar + 1) % len(prog)]
        c = chord(r, kind, 36)
        nxt = 36 + (nr - 36) % 12
        line = [c[0], rng.choice([c[1], c[2]]), rng.choice([c[2], c[3] if len(c) > 3 else c[1]]),
                nxt + rng.choice([-1, 1])]
        line[2] = min(bass_scale, key=lambda p: abs(p - line[2]))
        for q, p in enumerate(line):
            s.note(bar * 4 + q, 0.92, 0, p, rng.randint(85, 110) - (8 if q % 2 else 0))
        for q in range(4):                                    # ride: ding, ding-da, ding, ding-da
            s.note(bar * 4 + q, 0.3, DRUMS, RIDE, rng.randint(70, 90) + (8 if q % 2 else 0))
            if q % 2 == 1:
                s.note(bar * 4 + q + 2 / 3, 0.3, DRUMS, RIDE, rng.randint(55, 70))
                s.note(bar * 4 + q, 0.3, DRUMS, HAT_PEDAL, rng.randint(60, 75))
        voicing = [c[1] + 12, c[2] + 12] + ([c[3] + 12] if len(c) > 3 else [c[0] + 24])
        voicing.append(c[0] + 26)                              # a ninth on top
        for _ in range(rng.randint(1, 3)):                    # Charleston-ish comping stabs
            pos = rng.choice([0, 2 / 3, 1 + 2 / 3, 2, 2 + 2 / 3, 3 + 2 / 3])
            length = rng.choice([0.3, 0.6, 1.0])
            v = rng.randint(50, 72)
            for p in voicing:
                s.note(bar * 4 + pos, length, 1, p, v)
    mel = scale_pitches(58, MIXOLYDIAN, 70, 91)
    melody(s, rng, 2, mel, 0.0, s.beats, [(0.5, 6), (1, 4), (1.5, 2), (2, 1)], vel=(65, 100),
           rest=0.15, chord_at=chord_at, swing=True, start=82)
    return s


def guitar_piece(seed):
    rng = random.Random(seed)
    s = Song(90)
    s.program(0, 24, volume=112, reverb=35, pan=50)            # Acoustic Guitar (nylon)
    s.program(1, 73, volume=100, reverb=45, pan=80)            # Flute
    prog = [(55, "maj"), (52, "min"), (48, "maj"), (50, "maj"), (55, "maj"), (59, "min"),
            (48, "maj"), (50, "sus4")]                         # G Em C D G Bm C Dsus4

    def chord_at(b):
        r, kind = prog[int(b // 4) % len(prog)]
        return {p % 12 for p in chord(r, kind, 48)}

    patterns = [[0, 3, 1, 4, 2, 3, 1, 4], [0, 2, 1, 3, 0, 4, 1, 2], [0, 4, 2, 3, 1, 4, 2, 3]]
    for bar in range(int(math.ceil(s.beats / 4))):
        r, kind = prog[bar % len(prog)]
        c = chord(r, kind, 52)
        bass = 40 + (r - 40) % 12
        fifth = bass + 7 if bass + 7 <= 52 else bass - 5
        strings = [bass, c[0], c[1], c[2], c[0] + 12]
        pat = patterns[bar % len(patterns)] if bar % 4 != 3 else rng.choice(patterns)
        for e, idx in enumerate(pat):
            b = bar * 4 + e * 0.5
            p = strings[idx]
            if idx == 0 and e == 4:
                p = fifth                                      # alternating thumb bass
            v = rng.randint(70, 90) if idx == 0 else rng.randint(50, 75)
            s.note(b, 1.5 if idx == 0 else 1.0, 0, p, v)
    mel = scale_pitches(55, MAJOR, 74, 93)
    melody(s, rng, 1, mel, 0.0, s.beats, [(0.5, 4), (1, 4), (1.5, 2), (2, 3)], vel=(65, 100),
           rest=0.12, chord_at=chord_at, start=79)
    return s


def electronic_piece(seed):
    rng = random.Random(seed)
    s = Song(125)
    s.program(0, 81, volume=110, reverb=5, pan=64)             # Lead 2 (sawtooth), as a bass
    s.program(1, 89, volume=85, reverb=40, chorus=40)          # Pad 2 (warm)
    s.program(DRUMS, 24, volume=105, reverb=5)                 # Electronic kit
    loop = [(45, "min"), (45, "min"), (41, "maj"), (43, "maj")]   # Am Am F G
    brk = (32.0, 35.0)                                         # break: 1.44 s; cut tails at its start
    for ch in (0, 1, DRUMS):
        s.cc(brk[0], ch, 120, 0)                               # All Sound Off
    nbars = int(math.ceil(s.beats / 4))
    for bar in range(nbars):
        r, kind = loop[bar % 4]
        root = 33 + (r - 33) % 12
        c = chord(r, kind, 57)
        b0 = bar * 4
        if b0 + 4 <= brk[0] or b0 >= brk[1]:
            pad_len = 4.0
        elif b0 < brk[0]:
            pad_len = brk[0] - b0 - 0.05
        else:
            pad_len = 0
        for p in c:
            if pad_len > 0:
                s.note(b0, pad_len - 0.05, 1, p, rng.randint(50, 65))
        for e in range(8):
            b = b0 + e * 0.5
            if brk[0] <= b < brk[1]:
                continue
            if e % 2 == 1 or rng.random() < 0.3:                # off-beat bass
                p = root + rng.choice([0, 0, 0, 12, 7])
                s.note(b, min(0.4, max(0.05, brk[0] - b - 0.02) if b < brk[0] else 0.4), 0, p,
                       rng.randint(80, 110))
            if e % 2 == 0:
                s.note(b, 0.25, DRUMS, KICK, rng.randint(110, 125))
            else:
                s.note(b, 0.2, DRUMS, HAT_OPEN if rng.random() < 0.7 else HAT_CLOSED,
                       rng.randint(60, 85))
            if e in (2, 6):
                s.note(b, 0.25, DRUMS, CLAP, rng.randint(90, 110))
    # a short stab melody on the pad channel in the upper register
    mel = scale_pitches(57, DORIAN, 72, 88)
    melody(s, rng, 1, mel, 8.0, s.beats, [(0.5, 4), (1, 3), (1.5, 1), (2, 1)], vel=(55, 80),
           rest=0.4, start=76, gaps=[brk])
    return s


PIECES = [
    ("dev-piano", piano_piece, 101),
    ("dev-synthpop", synthpop_piece, 202),
    ("dev-dance", electronic_piece, 707),
    ("test-strings", strings_piece, 303),
    ("test-jazz", jazz_piece, 404),
    ("test-guitar", guitar_piece, 505),
    ("test-electronic", electronic_piece, 606),
]


# ------------------------------------------------------------------------------------------ audio

def lowpass_taps(n, cutoff, rate):
    """Blackman-windowed sinc low-pass, unity DC gain."""
    fc = cutoff / rate
    m = (n - 1) / 2
    h = []
    for i in range(n):
        x = i - m
        sinc = 2 * fc if x == 0 else math.sin(2 * math.pi * fc * x) / (math.pi * x)
        w = 0.42 - 0.5 * math.cos(2 * math.pi * i / (n - 1)) + 0.08 * math.cos(4 * math.pi * i / (n - 1))
        h.append(sinc * w)
    g = sum(h)
    return [v / g for v in h]


def render(song, workdir, name):
    mid = os.path.join(workdir, name + ".mid")
    raw = os.path.join(workdir, name + ".f32")
    with open(mid, "wb") as f:
        f.write(song.midi())
    subprocess.run(["fluidsynth", "-q", "-n", "-i", "-o", "synth.cpu-cores=1",
                    "-o", "synth.lock-memory=0", "-r", str(RENDER_RATE), "-g", "0.6",
                    "-T", "raw", "-O", "float", "-E", "little", "-F", raw, SF2, mid],
                   check=True, stdout=subprocess.DEVNULL)
    a = array.array("f")
    with open(raw, "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    mono = [(a[i] + a[i + 1]) * 0.5 for i in range(0, len(a) - 1, 2)]   # average L and R
    return mono


def decimate(x, factor, n_out):
    taps = lowpass_taps(255, 3650, RENDER_RATE)
    half = len(taps) // 2
    pad = [0.0] * half
    xp = pad + x + pad + [0.0] * (n_out * factor)
    mul = operator.mul
    return [sum(map(mul, taps, xp[i * factor:i * factor + len(taps)])) for i in range(n_out)]


def block_db(x, n=80):
    out = []
    for i in range(0, len(x) - n + 1, n):
        ms = sum(v * v for v in x[i:i + n]) / n
        out.append(10 * math.log10(ms) if ms > 0 else -200.0)
    return out


def rms_db(x):
    ms = sum(v * v for v in x) / len(x)
    return 10 * math.log10(ms) if ms > 0 else -200.0


def active_rms_db(x):
    """RMS over the non-silent 10 ms blocks: those within 50 dB of the loudest block."""
    blocks = block_db(x)
    top = max(blocks)
    keep = [b for b in blocks if b > top - 50]
    return 10 * math.log10(sum(10 ** (b / 10) for b in keep) / len(keep))


def lin2ulaw(sample):
    """G.711 mu-law encoder for one 16-bit linear sample (Sun Microsystems' reference g711.c,
    14-bit form; the same codes as CPython's audioop.lin2ulaw)."""
    pcm = sample >> 2                                   # arithmetic shift, as in the C original
    if pcm < 0:
        pcm, mask = -pcm, 0x7F
    else:
        mask = 0xFF
    pcm = min(pcm, 8159) + 0x21                         # CLIP, BIAS >> 2
    seg = 0
    while seg < 8 and pcm > (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)[seg]:
        seg += 1
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask


def ulaw2lin(code):
    code = ~code & 0xFF
    t = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return (0x84 - t) if code & 0x80 else (t - 0x84)


ULAW = [lin2ulaw(v) for v in range(-32768, 32768)]     # lookup, index = sample + 32768


def write_mulaw_wav(path, codes):
    n = len(codes)
    fmt = (7).to_bytes(2, "little") + (1).to_bytes(2, "little") + RATE.to_bytes(4, "little") \
        + RATE.to_bytes(4, "little") + (1).to_bytes(2, "little") + (8).to_bytes(2, "little") \
        + (0).to_bytes(2, "little")                      # cbSize
    fact = n.to_bytes(4, "little")
    data = bytes(codes) + (b"\xff" if n % 2 else b"")   # pad byte (mu-law silence)
    riff = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt \
        + b"fact" + len(fact).to_bytes(4, "little") + fact \
        + b"data" + n.to_bytes(4, "little") + data
    with open(path, "wb") as f:
        f.write(b"RIFF" + len(riff).to_bytes(4, "little") + riff)


def longest_quiet(blocks, thr=-60.0):
    best = run = 0
    for b in blocks:
        run = run + 1 if b < thr else 0
        best = max(best, run)
    return best * 0.01


def main():
    n_out = int(round(SECONDS * RATE))
    factor = RENDER_RATE // RATE
    os.makedirs(OUT_DIR, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, compose, seed in PIECES:
            song = compose(seed)
            mono = render(song, tmp, name)
            y = decimate(mono, factor, n_out)              # exactly 30.0 s at 8 kHz
            gain = 10 ** ((TARGET_DBFS - active_rms_db(y)) / 20)
            peak = max(abs(v) for v in y)
            limited = peak * gain > PEAK_CEILING
            if limited:                                   # never clip: back the gain off instead
                gain = PEAK_CEILING / peak
            codes = [ULAW[max(-32768, min(32767, int(round(v * gain * 32768)))) + 32768] for v in y]
            write_mulaw_wav(os.path.join(OUT_DIR, name + ".wav"), codes)
            dec = [ulaw2lin(c) / 32768 for c in codes]     # measure what was written
            blocks = block_db(dec)
            rows.append((name, os.path.getsize(os.path.join(OUT_DIR, name + ".wav")),
                         active_rms_db(dec), rms_db(dec), 20 * math.log10(max(abs(v) for v in dec)),
                         sum(b < -60 for b in blocks) / len(blocks), longest_quiet(blocks),
                         song.bpm, limited))
    print("| file | bytes | RMS dBFS (non-silent) | RMS dBFS (all) | peak dBFS "
          "| 10 ms blocks < -60 dBFS | longest quiet run | bpm |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, size, arms, rms, pk, quiet, run, bpm, limited in rows:
        print(f"| `{name}.wav` | {size} | {arms:.1f}{' (peak-limited)' if limited else ''} | {rms:.1f} "
              f"| {pk:.1f} | {100 * quiet:.1f} % | {run:.2f} s | {bpm} |")


if __name__ == "__main__":
    main()
