"""The smtplib anchor for benches/smtp.rs: one connection, sequential sendmail calls.

usage: smtp_smtplib.py PORT SECONDS MESSAGE_FILE  -> prints "COUNT ELAPSED_SECONDS"
"""
import smtplib
import sys
import time

port, seconds, path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
data = open(path, "rb").read()
with smtplib.SMTP("127.0.0.1", port) as s:
    s.ehlo()
    s.sendmail("bench@example.com", ["sink@example.org"], data)  # warm up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        s.sendmail("bench@example.com", ["sink@example.org"], data)
        count += 1
    print(count, time.perf_counter() - start)
