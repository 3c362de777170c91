// Reading a password for `user add|passwd`: from standard input (scripts, --password-stdin) or
// from the terminal without echo.
import readline from 'node:readline';

export async function readPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin || !process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    // A pipe (`echo pw | portcullis user add …`) ends the password with a newline, sometimes
    // CRLF or more than one (here-docs, Windows editors): line ends at the end are never part of it.
    const text = Buffer.concat(chunks).toString('utf8').replace(/[\r\n]+$/, '');
    if (!text) throw new Error('no password on standard input');
    return text;
  }
  const first = await prompt('Password: ');
  const again = await prompt('Password again: ');
  if (first !== again) throw new Error('the passwords do not match');
  return first;
}

function prompt(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: true });
    const write = (rl as unknown as { _writeToOutput: (s: string) => void });
    rl.question(question, (answer) => {
      rl.close();
      process.stdout.write('\n');
      resolve(answer);
    });
    write._writeToOutput = () => undefined; // no echo
  });
}
