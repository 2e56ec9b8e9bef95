"""smtplib client: one message to four recipients with maxrcpt 2.
Prints the refused recipients and the result; exit 0 when the two first
were taken and the other two refused with 452."""
import smtplib
import sys

port = int(sys.argv[1])
s = smtplib.SMTP('127.0.0.1', port, local_hostname='client.example', timeout=60)
rcpts = ['r1@us.example', 'r2@us.example', 'r3@us.example', 'r4@us.example']
try:
    refused = s.sendmail('a@client.example', rcpts, b'Subject: maxrcpt\r\n\r\nhello\r\n')
except smtplib.SMTPRecipientsRefused as e:
    print('all refused', e.recipients)
    sys.exit(1)
s.quit()
print('refused', refused)
codes = {r: c for r, (c, _) in refused.items()}
sys.exit(0 if codes == {'r3@us.example': 452, 'r4@us.example': 452} else 1)
