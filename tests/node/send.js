// send.js - one message through transit's submission port with nodemailer,
// as an application would (tests/integration/test_nodemailer.py).
//
// Usage: node send.js '<json>' with
//   {host, port, servername, ca (PEM file), user, pass, method ("PLAIN" |
//    "LOGIN"), from, to, subject, text}
// STARTTLS is required (requireTLS) and the server certificate is verified
// against the given CA file and servername; nothing is left unverified.
// Prints one JSON line: {"ok": true, "response": "250 ..."} or
// {"ok": false, "code": "EAUTH", "responseCode": 535, "response": "..."};
// exits 0 when sent, 1 when refused, 2 on a usage error.
'use strict';

const fs = require('fs');
const nodemailer = require('nodemailer');

async function main() {
    let a;
    try {
        a = JSON.parse(process.argv[2]);
    } catch (e) {
        process.stderr.write('usage: node send.js JSON\n');
        return 2;
    }
    const transport = nodemailer.createTransport({
        host: a.host,
        port: a.port,
        secure: false,
        requireTLS: true,
        authMethod: a.method,
        auth: { user: a.user, pass: a.pass },
        tls: { ca: [fs.readFileSync(a.ca)], servername: a.servername, rejectUnauthorized: true },
        connectionTimeout: 15000,
        greetingTimeout: 15000,
        socketTimeout: 30000,
    });
    try {
        const info = await transport.sendMail({
            from: a.from, to: a.to, subject: a.subject, text: a.text,
        });
        process.stdout.write(JSON.stringify({ ok: true, response: info.response }) + '\n');
        return 0;
    } catch (e) {
        process.stdout.write(JSON.stringify({
            ok: false, code: e.code || null, responseCode: e.responseCode || null,
            response: e.response || String(e.message),
        }) + '\n');
        return 1;
    } finally {
        transport.close();
    }
}

main().then((rc) => { process.exitCode = rc; });
