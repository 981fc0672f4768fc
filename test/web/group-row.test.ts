import t from 'tap'
import { actorNames, groupSummary, type RowGroup } from '../../web/src/group-row.js'

const group = (count: number, names: string[], actorCount = names.length): RowGroup =>
  ({ id: 'g', count, actorCount, actors: names.map((name, index) => ({ id: String(index), name })), unread: 0 })

t.test('actor names as a row says them: one, two, three, then two and how many others', async (t) => {
  t.equal(actorNames(['Bruno'], 1), 'Bruno')
  t.equal(actorNames(['Bruno', 'Rick'], 2), 'Bruno and Rick')
  t.equal(actorNames(['Bruno', 'Rick', 'Lena'], 3), 'Bruno, Rick and Lena')
  t.equal(actorNames(['Bruno', 'Rick', 'Lena'], 4), 'Bruno, Rick and 2 others')
  t.equal(actorNames(['Bruno', 'Rick', 'Lena'], 40), 'Bruno, Rick and 38 others')
  t.equal(actorNames(['Bruno'], 3), 'Bruno', 'only one name known: no made-up others')
})

t.test('a group of follows says who; a group of another type its newest text and how many more; a row of one nothing', async (t) => {
  t.equal(groupSummary('follow', group(4, ['Bruno', 'Rick', 'Lena'], 4), 'Bruno started following you.'), 'Bruno, Rick and 2 others started following you.')
  t.equal(groupSummary('follow', group(2, ['Bruno'], 1), 'Bruno started following you.'), 'Bruno started following you.', 'one person twice')
  t.equal(groupSummary('comment.reply', group(3, ['Bruno', 'Rick']), 'New reply on "Roadmap"'), 'New reply on "Roadmap" (+2 more)')
  t.equal(groupSummary('follow', group(1, ['Bruno']), 'Bruno started following you.'), null)
})
