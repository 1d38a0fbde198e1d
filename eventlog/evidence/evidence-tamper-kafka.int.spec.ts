/**
 * The tamper suite (spec-support.ts) on real Kafka topics (the shared test broker): each log is a
 * fresh topic the records are produced to, as another producer that knows the format would.
 */
import { openKafkaLogReader } from '../kafka/kafka-log.ts';
import { sharedBrokers, testLogOptions, topicAdmin, uniqueTopic } from '../kafka/spec-support.ts';
import { testEvidenceTampering } from './spec-support.ts';

testEvidenceTampering('Kafka', async (t, records) => {
  const brokers = await sharedBrokers();
  const topics = await topicAdmin(t, brokers);
  const topic = await topics.create(uniqueTopic('attest-tamper'));
  await topics.produce(topic, records.map((record) => ({ key: String(record['stream']), value: JSON.stringify(record), headers: { 'attest-event-id': String(record['id']) } })), brokers);
  const options = testLogOptions(brokers, topic, { createTopic: false });
  return () => openKafkaLogReader(options);
});
