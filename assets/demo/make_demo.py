#!/usr/bin/env python3
"""Makes assets/demo/call-stereo.wav: a 20 s two-party call (agent left, customer right, as
FreeSWITCH RECORD_STEREO writes) from the speech in assets/speech, with a -55 dBFS line-noise
floor on both legs and a little overtalk. Deterministic; run from the repository root."""
import random, struct, wave

RATE = 8000

def load(name):
    w = wave.open(f"assets/speech/{name}.wav")
    return list(struct.unpack(f"<{w.getnframes()}h", w.readframes(w.getnframes())))

def place(track, name, at):
    clip = load(name)
    start = int(at * RATE)
    for i, v in enumerate(clip):
        if start + i < len(track):
            track[start + i] += v

random.seed(2)
n = 20 * RATE
agent = [random.gauss(0, 58) for _ in range(n)]      # about -55 dBFS
customer = [random.gauss(0, 58) for _ in range(n)]
place(agent, "asterisk-queue-youarenext", 0.4)
place(customer, "asterisk-unidentified-no-callback", 5.3)
place(agent, "asterisk-vm-mailboxfull", 9.6)
place(customer, "fsdd-3_jackson_12", 11.0)
place(customer, "asterisk-privacy-prompt", 14.2)
place(agent, "fsdd-9_nicolas_8", 16.9)
out = wave.open("assets/demo/call-stereo.wav", "wb")
out.setnchannels(2)
out.setsampwidth(2)
out.setframerate(RATE)
frames = bytearray()
for a, c in zip(agent, customer):
    frames += struct.pack("<hh", max(-32768, min(32767, int(round(a)))), max(-32768, min(32767, int(round(c)))))
out.writeframes(bytes(frames))
out.close()
