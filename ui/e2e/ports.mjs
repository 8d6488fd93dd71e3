// A port nothing listens on now (the OS picks it), for the drivers and servers tests start.

import { createServer } from "node:net";

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}
