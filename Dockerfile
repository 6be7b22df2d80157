# stella worker / API image. The same image runs `stella serve --no-api` (worker) and
# `stella serve --no-worker` (API); see docker-compose.yml.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production STELLA_DATA_DIR=/var/lib/stella
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY migrations ./migrations
COPY schemas ./schemas
COPY tsconfig.json ./
RUN useradd --system --home /var/lib/stella stella && mkdir -p /var/lib/stella && chown stella /var/lib/stella
USER stella
VOLUME /var/lib/stella
EXPOSE 8787
ENTRYPOINT ["node", "bin/stella.mjs"]
CMD ["serve"]
