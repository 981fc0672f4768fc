# The gateway as an image, for `docker compose --profile cluster up` (docker-compose.yml).
# Not built on the machine this was written on (no Docker engine there); see docs/operations.md.

# Build: compile TypeScript, and better-sqlite3's native module (npm ci builds it from source
# when no prebuilt binary fits: python3, make and g++).
FROM node:20-slim AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY server server
COPY local local
COPY client client
COPY web web
# Then drop the dev dependencies: node_modules goes to the runtime image as it is, compiled
# module included (same base image, so the same Node ABI and libc).
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# Runtime: what `node dist/server/main.js` reads. package.json marks the project root (the page
# is served from web/ and dist/web/ beside it).
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/web/index.html /app/web/style.css /app/web/favicon.svg web/
# DATA_DIR (./data): the SQLite inbox when DATABASE_URL is unset, written by the image's non-root user.
RUN mkdir data && chown node:node data
USER node
EXPOSE 3000
CMD ["node", "dist/server/main.js"]
