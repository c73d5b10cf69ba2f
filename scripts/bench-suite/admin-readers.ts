/**
 * The admin readers of section 7, in a process of their own: `bun admin-readers.ts SOCKET N`
 * reads the largest allocation page in N loops until SIGTERM, then prints how many pages it
 * read. Apart from the bench, so receiving pages does not hold up the bench's own event loop
 * while it times a plugin exec.
 */
const [socket, count] = [process.argv[2]!, Number(process.argv[3] ?? 12)];
let running = true;
let pages = 0;
const loops = Array.from({ length: count }, async () => {
  while (running) {
    const res = await fetch("http://ipamd/v1/allocations?limit=100000", { unix: socket });
    await res.arrayBuffer();
    pages++;
  }
});
process.on("SIGTERM", async () => {
  running = false;
  await Promise.all(loops);
  console.log(pages);
  process.exit(0);
});
console.log("reading");
